"""TensorFlow imported at its first use, so `import keras_eexit` stays light.

Under `KERAS_BACKEND=jax` (or `torch`) the model pieces of keras-eexit need
no TensorFlow; its TensorFlow tools (`tf.data` pipelines, SavedModel and
LiteRT export, the TF-graph FLOPs counter, the TensorFlow training steps)
do. Modules of keras-eexit write

    from keras_eexit.utils.lazy_import import tf

and use `tf.` inside functions only: TensorFlow is imported the first time
an attribute of `tf` is read, never by importing the module.

Example:

>>> from keras_eexit.utils.lazy_import import LazyModule
>>> json = LazyModule("json", "this example")
>>> json.dumps([1])
'[1]'
"""

import importlib
import sys


class LazyModule:
    """A module imported the first time one of its attributes is read.

    Dunder names (`__wrapped__`, which `inspect` and doctest probe for) do
    not trigger the import: before it they raise `AttributeError`.

    Args:
        name: the module's import name (`"tensorflow"`).
        needed_for: what needs it, named in the error raised when it cannot
            be imported.

    Example:

    >>> math = LazyModule("math", "this example")
    >>> math.sqrt(4.0)
    2.0
    """

    def __init__(self, name, needed_for):
        self._name = name
        self._needed_for = needed_for
        self._module = None

    def __getattr__(self, attribute):
        if self._module is None:
            if attribute.startswith("__"):
                # Probes (`inspect.unwrap`'s `__wrapped__`, doctest) do not
                # import the module.
                raise AttributeError(attribute)
            try:
                self._module = importlib.import_module(self._name)
            except ImportError as error:
                raise ImportError(
                    f"{self._needed_for} needs `{self._name}`, which cannot "
                    f"be imported ({error}). Install it (`pip install "
                    f"{self._name}`), or use the parts of keras-eexit that "
                    "run on every Keras backend."
                ) from error
        return getattr(self._module, attribute)

    def __repr__(self):
        state = "imported" if self._module is not None else "not imported"
        return f"<LazyModule {self._name!r} ({state})>"


tf = LazyModule(
    "tensorflow",
    "This feature of keras-eexit (tf.data pipelines, SavedModel/LiteRT "
    "export, the TF-graph FLOPs counter, the TensorFlow training steps)",
)
"""TensorFlow, imported when one of its attributes is first read."""


def tensorflow_imported():
    """Whether TensorFlow is already imported in this process.

    A `tf.data.Dataset` or `tf.Tensor` cannot exist before it is, so type
    checks against TensorFlow classes can ask this first instead of
    importing TensorFlow for them.

    Returns:
        A bool.

    Example:

    >>> isinstance(tensorflow_imported(), bool)
    True
    """
    # `None` there marks a module made unimportable.
    return sys.modules.get("tensorflow") is not None


def is_tf_dataset(value):
    """Whether `value` is a `tf.data.Dataset`, without importing TensorFlow.

    Args:
        value: any object.

    Returns:
        A bool: `False` whenever TensorFlow is not imported.

    Example:

    >>> is_tf_dataset([1, 2])
    False
    """
    return tensorflow_imported() and isinstance(value, tf.data.Dataset)


def require_tensorflow(feature):
    """Fails in one line unless `feature`, a TensorFlow tool, can run here.

    SavedModel and LiteRT exports trace the model's layers into a
    TensorFlow graph: they need TensorFlow importable and the TensorFlow
    Keras backend. A model trained on JAX exports from a TensorFlow
    session through its `.keras` file.

    Args:
        feature: what is asked for, named in the message
            (`"export_litert"`).

    Raises:
        ImportError: when TensorFlow cannot be imported.
        RuntimeError: when Keras runs another backend.

    Example:

    >>> import keras
    >>> if keras.backend.backend() == "tensorflow":
    ...     require_tensorflow("this example")
    """
    import importlib

    import keras

    try:
        importlib.import_module("tensorflow")
    except ImportError as error:
        raise ImportError(
            f"{feature} needs `tensorflow`, which cannot be imported "
            f"({error}). Install it (`pip install tensorflow`) and export "
            "with KERAS_BACKEND=tensorflow, from the model's .keras file "
            "saved on any backend.") from None
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{feature} traces the model into a TensorFlow graph and needs "
            f"KERAS_BACKEND=tensorflow (this process runs {backend!r}): "
            "save the model as a .keras file and export it from a "
            "TensorFlow session.")
