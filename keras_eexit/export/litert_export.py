"""`export_litert`: a multi-exit model to LiteRT files plus a JSON sidecar."""

import contextlib
import errno
import hashlib
import json
import os
import warnings

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.export import _graph
from keras_eexit.export._convert import check_quantization
from keras_eexit.export._convert import convert
from keras_eexit.export._convert import representative_samples
from keras_eexit.inference.graph_checks import INVALID_EXIT
from keras_eexit.utils.atomic import atomic_path
from keras_eexit.utils.lazy_import import require_tensorflow
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

SIDECAR = "litert_export.json"
"""Name of the JSON sidecar written next to the `.tflite` files."""

FORMAT = "keras-eexit-litert"
FORMAT_VERSION = 2  # 2: per-exit `thresholds` input, any batch size
SIGNATURE = _graph.SIGNATURE

_CALIBRATION_BATCH = 64


def export_litert(
    model,
    path,
    mode="early_exit",
    criterion="max_softmax",
    quantization=None,
    representative_data=None,
    thresholds=None,
    policy=None,
    **deprecated,
):
    """Exports a multi-exit model to LiteRT (TFLite) for on-device inference.

    Three layouts, all converted with LiteRT built-in ops only (no Flex /
    SELECT_TF_OPS; an op without a built-in kernel raises an error naming
    it and its layer):

    * `mode="early_exit"`: ONE file, `early_exit.tflite`: batched early
      exit by compaction (`keras_eexit.inference.compaction`). Stage 1
      runs on the batch; the rows exit 1 accepts are done, the others are
      gathered (every tensor of the state) into stage 2, which runs inside
      a `tf.cond` (a LiteRT `If`) taken only when some row remains, and so
      on: deeper stages are really skipped for the rows that left.
      Signature `serving_default`: inputs `input` (any batch
      size: `(batch,) + input_shape`) and `thresholds` (float32, one per
      exit, chosen at run time); outputs `probabilities`
      `(batch, num_classes)` and `exit_index` `(batch,)` (int32,
      0-based). Signature `one_row`: the same for exactly one sample
      (`input` `(1,) + input_shape`), as nested `If`s on the sample's
      decision with no gather and static shapes, the least work per
      call (`LiteRTRunner` uses it for one sample; it stops at the first
      exit that accepts the sample).
    * `mode="per_exit"`: `exit_1.tflite`, ...: exit `k` as a standalone
      model (segments `1..k` and head `k`), input `input` (any batch
      size), output `probabilities`.
    * `mode="segments"`: `stage_1.tflite`, ...: stage `k` alone (segment
      `k` and head `k`) for runtimes that orchestrate the stages. Stage 1
      reads `input`; stage `k > 1` reads `state_0`, `state_1`, ... (the
      previous stage's state, a tuple state flattened in order); every
      stage returns `probabilities` and, but for the last, its own state
      as `state_0`, ... (any batch size).

    Signatures carry these names; outputs must be read by name, never by
    tensor position (`LiteRTRunner` does). Exit heads that declare
    `damping = True` (or an integer `drop_units`) have their extra trailing
    logits dropped before the softmax: the exported probabilities cover
    the real classes only.

    The exit rule is the criterion's (`keras_eexit.criteria`, the same
    as `evaluation.threshold_sweep` and `inference.predict_early_exit`):
    `"max_softmax"` exits when the top probability is `> threshold`,
    `"entropy"` when the entropy divided by `log(num_classes)` is
    `<= threshold`, `"patience"` when the prediction equals the previous
    `threshold` exits', `"static"` at exit number `threshold`; a sample
    no internal exit accepts leaves at the last exit. Scores are computed
    in float32 in the graph (LiteRT has no float64 kernels): max-softmax,
    patience and static decide exactly as the NumPy rule on the same
    probabilities; entropy can differ only within ~2 float32 ulps of the
    threshold.

    Files are converted in memory first, then written all or nothing:
    each to a temporary file beside its target, and only when every one
    is written are they renamed over their targets. A failed export
    (a full disk, an unwritable directory) leaves a previous export in
    `path` as it was and no directory it created; an interrupted one
    never leaves a truncated `.tflite`. The sidecar is written last and
    records each file's SHA-256, so `LiteRTRunner` refuses a set of files
    mixed from two exports.

    Args:
        model: a built `MultiExitModel` with a fully known input shape.
        path: output directory (created if missing). It receives the
            `.tflite` files and `litert_export.json`; files of a previous
            export listed in an older sidecar there are removed.
        mode: `"early_exit"`, `"per_exit"` or `"segments"`.
        criterion: `"max_softmax"`, `"entropy"`, `"patience"` or
            `"static"`.
        quantization: `None` (float32), `"dynamic"` (int8 weights, float
            activations), `"float16"` (float16 weights) or `"int8"` (full
            integer weights and activations, calibrated on
            `representative_data`; inputs and outputs stay float32).
        representative_data: `"int8"` only (required then): calibration
            inputs, an array `(num_samples,) + input_shape` or a data set
            of such batches (or of `(x, y)` pairs). A few hundred training
            samples are enough; all are used.
        thresholds: the default thresholds recorded in the sidecar (used
            by `LiteRTRunner.predict` when none is given): a number or one
            per exit; defaults to the criterion's default. The early-exit
            file takes its thresholds as an input at run time regardless.
            (Formerly `threshold=`, which still works for one release with
            a `DeprecationWarning`.)
        policy: an `keras_eexit.inference.ExitPolicy` instead of
            `criterion` and `thresholds`: its thresholds become the sidecar
            defaults and its temperatures (if any) are baked into every
            exported exit (logits divided by `T_k` before the softmax).

    Returns:
        The path of the sidecar (`<path>/litert_export.json`).

    Raises:
        ValueError: for an unknown mode, criterion or quantization, a
            threshold outside the criterion's range, missing or misshaped
            int8 calibration data, or a model that is not built.
        LiteRTExportError: (a `ValueError`) if an op needs Flex.

    Example:

    ```python
    sidecar = export_litert(model, "out/litert", mode="early_exit")
    runner = LiteRTRunner("out/litert")
    probs, exit_index = runner.predict(x_test[:8], thresholds=0.8)
    ```
    """
    require_tensorflow("export_litert")
    thresholds = renamed_argument("export_litert", deprecated, "threshold",
                                  "thresholds", thresholds)
    mode = check_choice("mode", mode, MODES)
    criterion = criteria_lib.get(criterion).name
    quantization = check_quantization(quantization)
    input_shape = _input_shape(model)
    criterion, thresholds, temperatures = _exit_rule(model, criterion,
                                                     thresholds, policy)
    _check_quantizable(criterion, mode, quantization)
    directory = _check_directory(path)
    samples = _calibration_samples(quantization, representative_data,
                                   input_shape, model)
    with _graph.float32_compute(model):
        graph = _graph.ChainGraph(model, input_shape, criterion,
                                  temperatures)
        entries = _ENTRIES[mode](graph, criterion, quantization, samples,
                                 model)
    metadata = _metadata(model, graph, mode, criterion, thresholds,
                         temperatures, quantization, input_shape)
    return _write_export(directory, entries, metadata)


# ------------------------------------------------------------- arguments
def _exit_rule(model, criterion, thresholds, policy):
    """`(criterion, thresholds, temperatures)` from the arguments."""
    temperatures = None
    if policy is not None:
        from keras_eexit.inference.policy import as_policy

        if thresholds is not None:
            raise ValueError("Pass either `policy=` or `thresholds=`, not "
                             "both.")
        policy = as_policy(model.num_exits, policy=policy)
        criterion, thresholds = policy.criterion, policy.thresholds
        temperatures = policy.temperatures
    if thresholds is None:
        thresholds = criteria_lib.get(criterion).default
    thresholds = criteria_lib.check_thresholds(criterion, thresholds,
                                               model.num_exits, "thresholds")
    return criterion, thresholds, temperatures


def renamed_argument(function, kwargs, old, new, value):
    """The value of argument `new`, also accepted under its former name.

    Args:
        function: the function's name, for messages.
        kwargs: the function's remaining keyword arguments (`**kwargs`).
        old: the former name (deprecated for one release).
        new: the current name.
        value: the value passed as `new`.

    Returns:
        `value`, or the value passed as `old` (with a `DeprecationWarning`
        naming `new`).

    Raises:
        TypeError: for both names at once, or any other keyword argument.
    """
    if old in kwargs:
        warnings.warn(
            f"`{function}({old}=...)` is deprecated and will be removed in "
            f"the next release; use `{function}({new}=...)` instead.",
            DeprecationWarning, stacklevel=3)
        if value is not None:
            raise TypeError(f"{function}() got `{new}` and its former name "
                            f"`{old}`: pass `{new}` only.")
        value = kwargs.pop(old)
    if kwargs:
        raise TypeError(f"{function}() got an unexpected keyword argument "
                        f"{next(iter(kwargs))!r}")
    return value


def _calibration_samples(quantization, representative_data, input_shape,
                         model):
    """The int8 calibration inputs (`None` without int8 quantization)."""
    if quantization == "int8":
        return representative_samples(
            representative_data, input_shape, model.input_dtype
        )
    if representative_data is not None:
        raise invalid_value(
            "representative_data",
            "None unless quantization='int8' (only full-integer "
            "quantization is calibrated)",
            type(representative_data).__name__,
        )
    return None


# ---------------------------------------------------------------- sidecar
def _metadata(model, graph, mode, criterion, thresholds, temperatures,
              quantization, input_shape):
    """The sidecar's content, but for the files (`_write_export` adds them)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model.name,
        "mode": mode,
        "criterion": criterion,
        "default_thresholds": [float(t) for t in thresholds],
        "threshold_range": list(
            criteria_lib.get(criterion).threshold_range(model.num_exits)),
        "temperatures": (None if temperatures is None
                         else list(temperatures)),
        "quantization": quantization,
        "exit_names": list(model.exit_names),
        "num_exits": graph.num_exits,
        "num_classes": graph.num_classes,
        "dropped_units": list(graph.drop),
        "flops_per_exit": [int(f) for f in model.flops_per_exit()],
        "input": {
            "name": _graph.INPUT,
            "shape": list(input_shape),
            "dtype": str(graph.dtype),
            "batch_size": None,
        },
        "signature": SIGNATURE,
        "invalid_exit_index": INVALID_EXIT,
        "files": [],
    }


def _write_export(directory, entries, metadata):
    """Writes the files and the sidecar; removes an older export's files.

    All or nothing: every file and the sidecar are written to temporary
    files first; only when all are written are they renamed over their
    targets, the sidecar last. A failed write leaves the previous export
    as it was, and no directory this call created.

    Returns:
        The sidecar's path.
    """
    contents = [entry.pop("content") for entry in entries]
    for entry, content in zip(entries, contents):
        entry["sha256"] = hashlib.sha256(content).hexdigest()
        entry["bytes"] = len(content)
        metadata["files"].append(entry)
    sidecar = os.path.join(directory, SIDECAR)
    text = (json.dumps(metadata, indent=2) + "\n").encode("utf-8")
    created = _make_directory(directory)
    writing = directory  # the file an OSError is about
    try:
        previous = _previous_files(directory)
        # An exit stack renames in reverse order: the sidecar last.
        with contextlib.ExitStack() as renames:
            sidecar_tmp = renames.enter_context(atomic_path(sidecar))
            for entry, content in zip(entries, contents):
                writing = os.path.join(directory, entry["file"])
                _write_bytes(renames.enter_context(atomic_path(writing)),
                             content)
            writing = sidecar
            _write_bytes(sidecar_tmp, text)
            writing = directory
    except BaseException as error:
        for path in created:  # deepest first; only if still empty
            try:
                os.rmdir(path)
            except OSError:
                break
        if isinstance(error, OSError) and error.errno is not None:
            # One line naming the output, never a temporary file.
            raise type(error)(error.errno, os.strerror(error.errno),
                              writing) from error
        raise
    current = {e["file"] for e in metadata["files"]}
    for name in previous - current:
        try:
            os.remove(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    return sidecar


def _make_directory(directory):
    """Creates `directory` and its missing parents.

    Returns:
        The directories created, deepest first.
    """
    created, path = [], os.path.abspath(directory)
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    return created


def _check_quantizable(criterion, mode, quantization):
    """An int8 early-exit file holds the criterion's score graph: refuse
    one that int8 conversion cannot carry (`Criterion.quantizable`)."""
    if mode != "early_exit" or quantization != "int8" or criteria_lib.get(
            criterion).quantizable:
        return
    names = [n for n, c in criteria_lib.CRITERIA.items() if c.quantizable]
    raise invalid_value(
        "criterion", f"one of {', '.join(names)} for mode='early_exit' with "
        "quantization='int8' (or mode='segments' or 'per_exit', whose files "
        "hold no exit rule)", criterion)


# ---------------------------------------------------------------- entries
def _early_exit_entry(graph, criterion, quantization, samples, model):
    representative = None
    if samples is not None:
        never = np.full(graph.num_exits, criteria_lib.get(
            criterion).never_exit(graph.num_exits), np.float32)

        def representative():
            # Every sample through both signatures (the same stages), with
            # thresholds no exit accepts so that every stage sees it: the
            # two calibrate alike.
            for sample in samples:
                yield (_graph.ONE_ROW_SIGNATURE,
                       {_graph.INPUT: sample[None],
                        _graph.THRESHOLDS: never})
                yield (_graph.SIGNATURE, {_graph.INPUT: sample[None],
                                          _graph.THRESHOLDS: never})

    content = convert([graph.early_exit_function(),
                       graph.one_row_function()], quantization,
                      representative, model)
    return {
        "file": "early_exit.tflite",
        "content": content,
        "exits": list(range(graph.num_exits)),
        "inputs": [_graph.INPUT, _graph.THRESHOLDS],
        "outputs": [_graph.PROBABILITIES, _graph.EXIT_INDEX],
        "one_row_signature": _graph.ONE_ROW_SIGNATURE,
    }


def _exit_entry(graph, k, quantization, samples, model):
    representative = None
    if samples is not None:

        def representative():
            for sample in samples:
                yield {_graph.INPUT: sample[None]}

    content = convert(graph.exit_function(k), quantization, representative,
                      model)
    return {
        "file": f"exit_{k + 1}.tflite",
        "content": content,
        "exit": k,
        "inputs": [_graph.INPUT],
        "outputs": [_graph.PROBABILITIES],
    }


def _stage_entry(graph, k, quantization, samples, states, model):
    if k == 0:
        inputs = [_graph.INPUT]
    else:
        inputs = list(graph.state_signature(k - 1))
    last = k == graph.num_exits - 1
    outputs = [_graph.PROBABILITIES]
    if not last:
        outputs += list(graph.state_signature(k))
    representative = None
    if samples is not None:
        arrays = [samples] if k == 0 else states[k - 1]

        def representative():
            for j in range(len(samples)):
                yield {name: a[j:j + 1] for name, a in zip(inputs, arrays)}

    content = convert(graph.stage_function(k), quantization, representative,
                      model)
    return {
        "file": f"stage_{k + 1}.tflite",
        "content": content,
        "stage": k,
        "inputs": inputs,
        "outputs": outputs,
    }


def _early_exit_entries(graph, criterion, quantization, samples, model):
    return [_early_exit_entry(graph, criterion, quantization, samples,
                              model)]


def _per_exit_entries(graph, criterion, quantization, samples, model):
    return [_exit_entry(graph, k, quantization, samples, model)
            for k in range(graph.num_exits)]


def _segments_entries(graph, criterion, quantization, samples, model):
    states = None
    if samples is not None:
        states = _calibration_states(graph, samples)
    return [_stage_entry(graph, k, quantization, samples, states, model)
            for k in range(graph.num_exits)]


_ENTRIES = {
    "early_exit": _early_exit_entries,
    "per_exit": _per_exit_entries,
    "segments": _segments_entries,
}
"""The converted files of each mode: `(graph, criterion, quantization,
samples, model) -> [entry]`, an entry being the sidecar's record of a file
plus its `content`."""

MODES = tuple(_ENTRIES)
"""Export modes: one early-exit file, one file per exit, one per stage."""


def _calibration_states(graph, samples):
    """Keras states after each segment for all calibration samples."""
    chunks = [
        graph.keras_states(samples[i:i + _CALIBRATION_BATCH])
        for i in range(0, len(samples), _CALIBRATION_BATCH)
    ]
    return [
        [np.concatenate([c[k][i] for c in chunks])
         for i in range(len(chunks[0][k]))]
        for k in range(graph.num_exits)
    ]


# ---------------------------------------------------------------- helpers
def _input_shape(model):
    for attribute in ("segments", "heads", "exit_names", "flops_per_exit"):
        if not hasattr(model, attribute):
            raise invalid_value(
                "model", "a MultiExitModel (segments and heads)",
                type(model).__name__,
            )
    if not model.built:
        raise ValueError(
            "The model is not built yet: call it on a batch (or `build` it) "
            "before exporting."
        )
    shape = tuple(model.input_shape_)
    if any(d is None for d in shape):
        raise ValueError(
            f"The model's input shape {shape} has unknown dimensions; "
            "LiteRT export needs a fully known input shape (build the model "
            "on a concrete shape)."
        )
    return tuple(int(d) for d in shape)


def _check_directory(path):
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        # An output that cannot be written (as `os.makedirs` would say),
        # before any work.
        raise FileExistsError(
            errno.EEXIST, "Not a directory (an export is a directory of "
            f".tflite files and {SIDECAR})", path)
    if path.endswith((".tflite", ".json")):
        raise invalid_value(
            "path",
            "a directory (it receives the .tflite files and "
            f"{SIDECAR})",
            path,
        )
    return path


def _previous_files(directory):
    """Files listed by an earlier sidecar in `directory` (basenames)."""
    try:
        with open(os.path.join(directory, SIDECAR), encoding="utf-8") as f:
            old = json.load(f)
        names = {entry["file"] for entry in old.get("files", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    return {
        n for n in names
        if isinstance(n, str) and n == os.path.basename(n)
        and n.endswith(".tflite")
    }


def _write_bytes(path, content):
    """Writes `content` to `path`, flushed to the disk."""
    with open(path, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
