"""LiteRT conversion with built-in ops only, quantisation, clear errors."""

import re
import warnings

import numpy as np

from keras_eexit.compat import flatten_layers

from keras_eexit.utils.validation import invalid_value

QUANTIZATIONS = (None, "dynamic", "float16", "int8")
"""Quantisation modes of `export_litert` (`None` keeps float32)."""


class LiteRTExportError(ValueError):
    """A model cannot be converted to LiteRT with built-in ops only.

    Attributes:
        ops: names of the TensorFlow ops that blocked the conversion.
        layers: names of the Keras layers they come from (where known).
    """

    def __init__(self, message, ops=(), layers=()):
        super().__init__(message)
        self.ops = tuple(ops)
        self.layers = tuple(layers)


def check_quantization(quantization):
    """Returns `quantization` if it is one of `QUANTIZATIONS`, else raises."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization {quantization!r}. Valid choices: "
            "None (float32), 'dynamic', 'float16', 'int8'."
        )
    return quantization


def representative_samples(data, input_shape, dtype="float32"):
    """Checks int8 calibration data and returns it as one array.

    Args:
        data: an array `(num_samples,) + input_shape`, or a
            `tf.data.Dataset` (or any iterable) of such batches or of
            `(x, y)` batch pairs.
        input_shape: the model's input shape without the batch axis.
        dtype: the model's input dtype.

    Returns:
        A numpy array `(num_samples,) + input_shape`.
    """
    expected = (
        f"an array of shape (num_samples, {', '.join(map(str, input_shape))})"
        " or a data set of such batches (calibration data for int8)"
    )
    if data is None:
        raise invalid_value("representative_data", expected, None)
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        batches = [np.asarray(data)]
    else:
        try:
            batches = []
            for batch in data:
                if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
                    batch = batch[0]
                batches.append(np.asarray(batch))
        except TypeError:
            raise invalid_value(
                "representative_data", expected, type(data).__name__
            ) from None
    for batch in batches:
        if batch.ndim != len(input_shape) + 1 or tuple(batch.shape[1:]) != (
            tuple(input_shape)
        ):
            raise ValueError(
                "Invalid value received for argument `representative_data`. "
                f"Expected {expected}. Received: representative_data with "
                f"shape {tuple(batch.shape)}"
            )
        if not np.issubdtype(batch.dtype, np.number):
            raise invalid_value(
                "representative_data", expected, f"dtype {batch.dtype}"
            )
    samples = np.concatenate(batches) if batches else np.zeros((0,))
    if len(samples) == 0:
        raise invalid_value(
            "representative_data", expected, "an empty data set"
        )
    with np.errstate(over="ignore"):  # 1e300 is Inf in float32: refused
        samples = samples.astype(dtype)
    _check_finite(samples)
    return samples


def _check_finite(samples):
    """Refuses NaN and Inf: the converter's int8 calibration crashes the
    process on them (a segmentation fault, no Python error)."""
    if not np.issubdtype(samples.dtype, np.floating):
        return
    finite = np.isfinite(samples.reshape(len(samples), -1)).all(axis=1)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    raise ValueError(
        "Invalid value received for argument `representative_data`. "
        "Expected finite numbers (int8 calibration cannot use NaN or Inf). "
        f"Received: NaN or Inf in {len(bad)} of {len(samples)} samples, the "
        f"first at sample {int(bad[0])}"
    )


def convert(function, quantization=None, representative=None, model=None):
    """Converts traced functions to LiteRT flatbuffer bytes.

    Args:
        function: a `tf.function` with an input signature (one signature,
            `serving_default`), or a list of them (one signature each,
            named after its Python function; constants they share are
            stored once).
        quantization: one of `QUANTIZATIONS`.
        representative: for `"int8"`, a callable returning an iterator of
            input dicts (signature names -> arrays), or with several
            functions of `(signature key, input dict)` pairs.
        model: the Keras model, to name the layer of an op that blocks the
            conversion.

    Returns:
        The `.tflite` content as `bytes`.

    Raises:
        LiteRTExportError: if an op has no LiteRT built-in kernel.
    """
    import tensorflow as tf

    functions = list(function) if isinstance(function, (list, tuple)) \
        else [function]
    module = tf.Module()
    for i, f in enumerate(functions):
        setattr(module, f"serve_{i}", f)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [f.get_concrete_function() for f in functions], module
    )
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.representative_dataset = representative
        # Full-integer kernels; float built-ins remain allowed for the few
        # ops without an int8 kernel. Inputs and outputs stay float32.
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
               tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.target_spec.supported_ops = ops
    with warnings.catch_warnings():
        # The int8 calibrator uses the deprecated `tf.lite.Interpreter`.
        warnings.filterwarnings(
            "ignore",
            message=r"\s*Warning: tf\.lite\.Interpreter is deprecated",
            category=UserWarning,
        )
        try:
            return converter.convert()
        except Exception as error:  # ConverterError lives in a private module
            if not hasattr(error, "errors"):
                raise
            raise _explain(error, model) from error


def _explain(error, model):
    """A `LiteRTExportError` naming the blocking ops and their layers."""
    ops, layers = [], []
    names = _layer_names(model)
    for data in getattr(error, "errors", []) or []:
        op = data.operator.name or ""
        if op and op not in ops:
            ops.append(op)
        scopes = [c.name for c in data.location.call if c.name]
        if getattr(data.location, "name", ""):
            scopes.append(data.location.name)
        layer = _layer_of(scopes, names)
        if layer and layer not in layers:
            layers.append(layer)
    if not ops:
        ops = sorted(set(re.findall(r"'(tf\.\w+)' op", str(error))))
    if not ops:
        return LiteRTExportError(
            f"LiteRT conversion failed: {str(error).strip()[:2000]}"
        )
    where = (
        f" in layer{'s' if len(layers) > 1 else ''} "
        + ", ".join(repr(n) for n in layers)
        if layers
        else ""
    )
    return LiteRTExportError(
        f"Cannot export to LiteRT with built-in ops only: op"
        f"{'s' if len(ops) > 1 else ''} {', '.join(ops)}{where} "
        "would need the TensorFlow (Flex / SELECT_TF_OPS) runtime, which "
        "device runtimes usually lack. Replace the layer by one made of "
        "LiteRT built-in ops.",
        ops=[o.removeprefix("tf.") for o in ops],
        layers=layers,
    )


def _layer_names(model):
    if model is None:
        return set()
    layers = flatten_layers(model)
    return {layer.name for layer in layers}


def _layer_of(scopes, names):
    """The deepest Keras layer name in an op's name-scope path."""
    for scope in scopes:
        path = scope.split("@", 1)[0].split("/")
        for part in reversed(path[:-1] or path):
            if part in names:
                return part
            base = re.sub(r"_\d+$", "", part)
            if base in names:
                return base
    return None
