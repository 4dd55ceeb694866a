"""`LiteRTRunner`: early-exit inference on files written by `export_litert`."""

import hashlib
import json
import os

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.export import _graph
from keras_eexit.export.litert_export import FORMAT
from keras_eexit.export.litert_export import FORMAT_VERSION
from keras_eexit.export.litert_export import SIDECAR
from keras_eexit.export.litert_export import renamed_argument
from keras_eexit.models.input_checks import check_finite_inputs


class LiteRTRunner:
    """Runs an exported multi-exit model with the LiteRT interpreter.

    Reads the JSON sidecar written by `export_litert`, checks that every
    listed `.tflite` file is the one the export wrote (SHA-256), and loads
    the files into `ai_edge_litert` interpreters. Tensors are read and
    written through the signature by name, never by position.

    How `predict` proceeds depends on the export mode:

    * `"early_exit"`: the model itself stops at the first confident exit
      and compacts the batch between stages (one call per batch; one
      sample goes through the file's `one_row` signature).
    * `"segments"`: the runner drives the stages: stage 1 runs on the
      whole batch, the samples its exit accepts are done, stage 2 runs on
      the rest with the state stage 1 returned, and so on.
    * `"per_exit"`: exit files are run in order on the samples not yet
      accepted; each file recomputes the backbone prefix from the input,
      so this wastes work and exists for parity checks, not speed.

    Args:
        path: the export directory, its `litert_export.json`, or one of
            the `.tflite` files it lists (the directory is used).
        num_threads: interpreter threads (`None`: LiteRT's default).

    Attributes:
        metadata: the sidecar as a dict.
        mode, criterion, quantization, exit_names, num_classes,
        input_shape, default_thresholds, flops_per_exit: read from it.

    Example:

    ```python
    runner = LiteRTRunner("out/litert")
    probs, exit_index = runner.predict(x_test, thresholds=0.9)
    ```
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        sidecar = _sidecar_path(path)
        try:
            with open(sidecar, encoding="utf-8") as f:
                self.metadata = json.load(f)
        except (UnicodeDecodeError, ValueError):
            raise ValueError(
                f"{sidecar} is not a keras-eexit LiteRT sidecar (not JSON). "
                "Pass the export directory written by export_litert (it "
                f"holds {SIDECAR} and the .tflite files)."
            ) from None
        if not isinstance(self.metadata, dict) or self.metadata.get(
                "format") != FORMAT:
            raise ValueError(
                f"{sidecar} is not a keras-eexit LiteRT sidecar (format "
                f"{getattr(self.metadata, 'get', lambda k: None)('format')!r})."
            )
        if self.metadata.get("format_version", 1) != FORMAT_VERSION:
            raise ValueError(
                f"{sidecar} was written by another keras-eexit version "
                "(LiteRT export format "
                f"{self.metadata.get('format_version', 1)}"
                f"; this version reads format {FORMAT_VERSION}). Export the "
                "model again."
            )
        directory = os.path.dirname(os.path.abspath(sidecar))
        meta = self.metadata
        self.mode = meta["mode"]
        self.criterion = meta["criterion"]
        self.quantization = meta["quantization"]
        self.exit_names = list(meta["exit_names"])
        self.num_exits = int(meta["num_exits"])
        self.num_classes = int(meta["num_classes"])
        self.input_shape = tuple(meta["input"]["shape"])
        self.input_dtype = np.dtype(meta["input"]["dtype"])
        self.default_thresholds = np.asarray(meta["default_thresholds"],
                                             np.float32)
        self.flops_per_exit = list(meta["flops_per_exit"])
        self._files = list(meta["files"])
        self._runners = []
        self._interpreters = []
        self._one_row = None  # the early-exit file's batch-1 signature
        for entry in self._files:
            file_path = os.path.join(directory, entry["file"])
            with open(file_path, "rb") as f:
                content = f.read()
            if hashlib.sha256(content).hexdigest() != entry["sha256"]:
                raise ValueError(
                    f"{file_path} does not match {SIDECAR} (its SHA-256 "
                    "differs): the files come from different or interrupted "
                    "exports. Export again into this directory."
                )
            interpreter = Interpreter(
                model_content=content, num_threads=num_threads
            )
            runner = interpreter.get_signature_runner(meta["signature"])
            details = interpreter.get_signature_list()[meta["signature"]]
            missing = (set(entry["inputs"]) - set(details["inputs"])) | (
                set(entry["outputs"]) - set(details["outputs"])
            )
            if missing:
                raise ValueError(
                    f"{file_path} lacks the signature tensors "
                    f"{sorted(missing)} listed in {SIDECAR}."
                )
            self._interpreters.append(interpreter)
            self._runners.append(runner)
            key = entry.get("one_row_signature")
            if key is not None:
                if key not in interpreter.get_signature_list():
                    raise ValueError(
                        f"{file_path} lacks the signature {key!r} listed "
                        f"in {SIDECAR}.")
                self._one_row = interpreter.get_signature_runner(key)

    # ------------------------------------------------------------ public
    def predict(self, x, thresholds=None, **deprecated):
        """Early-exit predictions for one sample or a batch.

        Args:
            x: one sample of shape `input_shape` or a batch of shape
                `(batch,) + input_shape`. Non-finite values (NaN, Inf) are
                refused, as `fit`/`evaluate` refuse them.
            thresholds: a number (every exit) or one per exit, within the
                criterion's range; defaults to the sidecar's
                `default_thresholds`. (Formerly `threshold=`, which still
                works for one release with a `DeprecationWarning`.)

        Returns:
            A tuple `(probabilities, exit_index)`: for a batch, arrays of
            shape `(batch, num_classes)` and `(batch,)` (0-based exit of
            each sample); for one sample, shapes `(num_classes,)` and `()`.
        """
        thresholds = renamed_argument("LiteRTRunner.predict", deprecated,
                                      "threshold", "thresholds", thresholds)
        if thresholds is None:
            thresholds = self.default_thresholds
        thresholds = criteria_lib.check_thresholds(
            self.criterion, thresholds, self.num_exits, "thresholds")
        batch, single = self._as_batch(x)
        if self.mode == "early_exit":
            probs, index = self._predict_early_exit(batch, thresholds)
        else:
            probs, index = self._predict_driven(batch, thresholds)
        if single:
            return probs[0], index[0]
        return probs, index

    def predict_all(self, x):
        """Every exit's probabilities (`per_exit` and `segments` exports).

        Args:
            x: a batch `(batch,) + input_shape` (or one sample).

        Returns:
            Array `(num_exits, batch, num_classes)`.
        """
        if self.mode == "early_exit":
            raise ValueError(
                "predict_all needs every exit's output: export with "
                "mode='per_exit' or mode='segments' (an early-exit model "
                "returns only the exit it takes)."
            )
        batch, _ = self._as_batch(x)
        if self.mode == "per_exit":
            return np.stack([self._run_exit(k, batch)
                             for k in range(self.num_exits)])
        outputs, inputs = [], {_graph.INPUT: batch}
        for k in range(self.num_exits):
            result = self._run(k, inputs)
            outputs.append(result[_graph.PROBABILITIES])
            inputs = self._next_inputs(k, result)
        return np.stack(outputs)

    # --------------------------------------------------------- internals
    def _as_batch(self, x):
        x = np.asarray(x)
        if tuple(x.shape) == self.input_shape:
            check_finite_inputs(x, use="inference")
            return x[None].astype(self.input_dtype), True
        if x.ndim == len(self.input_shape) + 1 and (
            tuple(x.shape[1:]) == self.input_shape
        ):
            if len(x) == 0:
                raise ValueError("LiteRTRunner received 0 samples.")
            check_finite_inputs(x, use="inference")
            return x.astype(self.input_dtype), False
        raise ValueError(
            f"Input shape mismatch: the exported model expects one sample "
            f"of shape {self.input_shape} or a batch of shape "
            f"{(None,) + self.input_shape}. Received: x with shape "
            f"{tuple(x.shape)}"
        )

    def _run(self, k, inputs):
        return self._runners[k](**inputs)

    def _run_exit(self, k, batch):
        return self._run(k, {_graph.INPUT: batch})[_graph.PROBABILITIES]

    def _next_inputs(self, k, result):
        if k + 1 >= self.num_exits:
            return None
        names = self._files[k + 1]["inputs"]
        return {name: result[name] for name in names}

    def _predict_early_exit(self, batch, thresholds):
        # One sample: the file's `one_row` signature (no compaction to do,
        # static shapes); otherwise the batched signature.
        runner = self._runners[0]
        if len(batch) == 1 and self._one_row is not None:
            runner = self._one_row
        out = runner(**{_graph.INPUT: batch, _graph.THRESHOLDS: thresholds})
        return (out[_graph.PROBABILITIES],
                out[_graph.EXIT_INDEX].astype(np.int64))

    def _predict_driven(self, batch, thresholds):
        """Segments or per-exit files driven from Python, with compaction:
        only the samples no exit accepted yet go on."""
        criterion = criteria_lib.get(self.criterion)
        last = self.num_exits - 1
        probs = np.empty((len(batch), self.num_classes), np.float32)
        index = np.full((len(batch),), last, np.int64)
        remaining = np.arange(len(batch))
        history = []  # every exit's probabilities of the remaining rows
        inputs = {_graph.INPUT: batch}
        for k in range(self.num_exits):
            if self.mode == "segments":
                result = self._run(k, inputs)
            else:
                result = self._run(k, {_graph.INPUT: batch[remaining]})
            p = result[_graph.PROBABILITIES]
            if k == last:
                probs[remaining] = p
                break
            history.append(p)
            score = criterion.scores(np.stack(history))[k]
            done = criterion.accepts(score, thresholds[k])
            probs[remaining[done]] = p[done]
            index[remaining[done]] = k
            remaining = remaining[~done]
            if len(remaining) == 0:
                break
            history = [h[~done] for h in history]
            if self.mode == "segments":
                inputs = {name: value[~done] for name, value in
                          self._next_inputs(k, result).items()}
        return probs, index


def _sidecar_path(path):
    """The sidecar for a directory, a sidecar or a `.tflite` file path."""
    if os.path.isdir(path):
        sidecar = os.path.join(path, SIDECAR)
    elif path.endswith(".tflite"):
        directory = os.path.dirname(os.path.abspath(path))
        sidecar = os.path.join(directory, SIDECAR)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No LiteRT file at {path}. LiteRTRunner takes the export "
                f"directory written by export_litert ({directory} would "
                f"need {SIDECAR}).")
        if not os.path.isfile(sidecar):
            raise FileNotFoundError(
                f"{path} has no {SIDECAR} beside it: LiteRTRunner takes the "
                "directory written by keras_eexit.export.export_litert (the "
                ".tflite files and their sidecar).")
    else:
        sidecar = path
    if not os.path.isfile(sidecar):
        raise FileNotFoundError(
            f"No LiteRT export at {path}: {SIDECAR} not found (write one "
            "with keras_eexit.export.export_litert)."
        )
    return sidecar
