"""`load_model`: loads a `.keras` multi-exit model safely, with clear errors."""

import os
import zipfile


def load_model(path):
    """Loads a `.keras` multi-exit model with `safe_mode=True`.

    Unlike a bare `keras.saving.load_model`, every failure is a `ValueError`
    naming the file and what is wrong with it: missing, not a `.keras`
    archive, unreadable, saved by a newer (incompatible) keras-eexit, or not
    a `MultiExitModel`. Safe mode refuses `Lambda` layers and any other
    pickled Python code.

    Args:
        path: the `.keras` file.

    Returns:
        The `MultiExitModel`, compiled if it was saved compiled.

    Raises:
        ValueError: as above.

    Example:

    ```python
    model.save("run/model.keras")
    model = keras_eexit.models.load_model("run/model.keras")
    ```
    """
    import keras

    from keras_eexit.models.multi_exit_model import MultiExitModel

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras model file (.keras archives are zip "
            "files written by model.save)."
        )
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises several types here.
        raise ValueError(
            f"Could not load {path} as a keras-eexit model: {error}"
        ) from error
    if not isinstance(model, MultiExitModel):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras_eexit "
            "MultiExitModel."
        )
    return model
