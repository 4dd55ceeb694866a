"""`cnn1d`: a four-stage 1D CNN for sequences such as MNIST-1D."""

import keras

from keras_eexit.models.zoo_common import assemble
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.models.zoo_common import conv_bn_relu
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.utils.validation import check_positive_int

_KERNELS = (5, 5, 3, 3)


def cnn1d(
    input_shape=(40, 1),
    num_classes=10,
    width=32,
    head="linear",
    damping=False,
    **head_kwargs,
):
    """A four-exit 1D CNN, sized for MNIST-1D (40 steps, 1 channel).

    Each stage is one convolution block (1D convolution, batch
    normalization, ReLU). The first stage keeps the resolution (kernel 5);
    the next three halve it with stride 2 (kernels 5, 3, 3) while the
    width doubles in stages 2 and 3. An exit head reads every stage:

        input -> [conv5 w]            -> exit_1   (40 steps)
              -> [conv5/2 2w]         -> exit_2   (20 steps)
              -> [conv3/2 4w]         -> exit_3   (10 steps)
              -> [conv3/2 4w]         -> exit_4   (5 steps)

    With the default linear heads (global average pooling and one `Dense`
    layer) the early exits see short receptive fields and lose the position
    of the features, so they are markedly weaker than the last exit.

    Args:
        input_shape: `(steps, channels)`, with at least 8 steps. Defaults
            to `(40, 1)`.
        num_classes: number of classes (>= 2).
        width: channels of the first stage (>= 1).
        head: the exit head of every stage: a name from
            `keras_eexit.layers.HEADS`, a head class or a factory.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`), for
            the damping losses (`Joint(loss="damping" | "power_sqrt")`).
        **head_kwargs: forwarded to every head.

    Returns:
        A `MultiExitModel` named `"cnn1d"` with 4 exits.

    Example:

    ```python
    model = cnn1d(num_classes=10)
    model(np.zeros((2, 40, 1)))["exit_4"].shape  # (2, 10)
    ```

    References:
        - [Greydanus and Kobak, 2020. Scaling Down Deep Learning with
            MNIST-1D](https://arxiv.org/abs/2011.14439)
    """
    input_shape = check_input_shape(input_shape, rank=2, min_size=8)
    num_classes = check_num_classes(num_classes)
    width = check_positive_int("width", width)

    inputs = keras.Input(shape=input_shape, name="sequence")
    x = inputs
    taps = []
    widths = (width, 2 * width, 4 * width, 4 * width)
    for stage, (filters, kernel) in enumerate(zip(widths, _KERNELS), 1):
        x = conv_bn_relu(x, keras.layers.Conv1D, filters, kernel,
                         name=f"stage{stage}",
                         strides=1 if stage == 1 else 2)
        taps.append(f"stage{stage}_out")
    backbone = keras.Model(inputs, x, name="cnn1d_backbone")
    heads = make_heads(head, num_classes, len(taps), damping=damping,
                       **head_kwargs)
    return assemble(backbone, taps[:-1], heads, name="cnn1d")
