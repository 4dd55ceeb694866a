"""Registration of keras-eexit objects with Keras serialization."""

import keras

PACKAGE = "keras_eexit"


def register(cls):
    """Registers a class with Keras serialization (package `keras_eexit`).

    Args:
        cls: A Keras layer, model, loss or callback class.

    Returns:
        The same class, registered as `"keras_eexit>ClassName"` so that
        `keras.saving.load_model(path, safe_mode=True)` can rebuild it.

    Example:

    ```python
    @register
    class MyHead(keras.layers.Layer):
        ...
    ```
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
