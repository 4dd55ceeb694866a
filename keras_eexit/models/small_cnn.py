"""`small_cnn`: a three-stage 2D CNN for small images such as 8x8 digits."""

import keras

from keras_eexit.models.zoo_common import assemble
from keras_eexit.models.zoo_common import check_input_shape
from keras_eexit.models.zoo_common import conv_bn_relu
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.utils.validation import check_positive_int


def small_cnn(
    input_shape=(8, 8, 1),
    num_classes=10,
    width=32,
    head="linear",
    damping=False,
    **head_kwargs,
):
    """A small three-exit 2D CNN, sized for scikit-learn's 8x8 digits.

    Each of the three stages is one convolution block (3x3 convolution,
    batch normalization, ReLU); stages 2 and 3 first halve the resolution
    with a 2x2 max-pool and double the width. An exit head reads the output
    of every stage:

        input -> [conv w] -> exit_1
              -> [pool, conv 2w] -> exit_2
              -> [pool, conv 4w] -> exit_3

    The first exit sees features with a 3x3 receptive field only, so it is
    clearly weaker than the last one: a good toy for exit policies.

    Args:
        input_shape: `(height, width, channels)`, each spatial side >= 4.
            Defaults to `(8, 8, 1)`.
        num_classes: number of classes (>= 2).
        width: channels of the first stage (>= 1); later stages use 2x and
            4x as many.
        head: the exit head of every stage: a name from
            `keras_eexit.layers.HEADS`, a head class or a factory.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`), for
            the damping losses (`Joint(loss="damping" | "power_sqrt")`).
        **head_kwargs: forwarded to every head (`dropout=0.2`, ...).

    Returns:
        A `MultiExitModel` named `"small_cnn"` with 3 exits.

    Example:

    ```python
    model = small_cnn(num_classes=10)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model(np.zeros((2, 8, 8, 1)))["exit_3"].shape  # (2, 10)
    ```
    """
    input_shape = check_input_shape(input_shape, rank=3, min_size=4)
    num_classes = check_num_classes(num_classes)
    width = check_positive_int("width", width)

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    taps = []
    for stage in range(1, 4):
        if stage > 1:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        x = conv_bn_relu(x, keras.layers.Conv2D, width * 2 ** (stage - 1),
                         3, name=f"stage{stage}")
        taps.append(f"stage{stage}_out")
    backbone = keras.Model(inputs, x, name="small_cnn_backbone")
    heads = make_heads(head, num_classes, 3, damping=damping,
                       **head_kwargs)
    return assemble(backbone, taps[:-1], heads, name="small_cnn")
