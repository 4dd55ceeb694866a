"""The model zoo by name: `MODELS` and `get_model`."""

from keras_eexit.models.applications import mobilenet_v2_exits
from keras_eexit.models.applications import resnet50_exits
from keras_eexit.models.cifar_resnet import cifar_resnet
from keras_eexit.models.cnn1d import cnn1d
from keras_eexit.models.msdnet import msdnet_cifar
from keras_eexit.models.msdnet_imagenet import msdnet_imagenet
from keras_eexit.models.ranet import ranet_cifar
from keras_eexit.models.small_cnn import small_cnn
from keras_eexit.models.text_transformer import text_transformer_exits
from keras_eexit.models.vgg16_exits import vgg16_exits
from keras_eexit.models.vit import vit_exits
from keras_eexit.utils.validation import check_choice

MODELS = {
    "small_cnn": small_cnn,
    "cnn1d": cnn1d,
    "cifar_resnet": cifar_resnet,
    "vgg16_exits": vgg16_exits,
    "mobilenet_v2_exits": mobilenet_v2_exits,
    "resnet50_exits": resnet50_exits,
    "msdnet_cifar": msdnet_cifar,
    "msdnet_imagenet": msdnet_imagenet,
    "ranet_cifar": ranet_cifar,
    "vit_exits": vit_exits,
    "text_transformer_exits": text_transformer_exits,
}
"""Zoo builders by name; each returns a new, randomly initialised
`MultiExitModel`."""


def get_model(name, **kwargs):
    """Builds a zoo model by name.

    Args:
        name: a key of `MODELS`: `"small_cnn"`, `"cnn1d"`,
            `"cifar_resnet"`, `"vgg16_exits"`, `"mobilenet_v2_exits"`,
            `"resnet50_exits"`, `"msdnet_cifar"`, `"msdnet_imagenet"`,
            `"ranet_cifar"`, `"vit_exits"` or
            `"text_transformer_exits"`.
        **kwargs: the builder's arguments (`num_classes`, `input_shape`,
            `head`, ...).

    Returns:
        A new `MultiExitModel`.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).

    Example:

    ```python
    model = get_model("cifar_resnet", depth=32, num_classes=100)
    ```
    """
    return MODELS[check_choice("model", name, MODELS)](**kwargs)
