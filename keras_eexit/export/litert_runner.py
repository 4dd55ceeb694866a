"""`LiteRTRunner`: early-exit inference on files written by `export_litert`."""

import hashlib
import json
import os

import numpy as np

from keras_eexit.export import _graph
from keras_eexit.export import criteria as criteria_lib
from keras_eexit.export.litert_export import FORMAT
from keras_eexit.export.litert_export import SIDECAR


class LiteRTRunner:
    """Runs an exported multi-exit model with the LiteRT interpreter.

    Reads the JSON sidecar written by `export_litert`, checks that every
    listed `.tflite` file is the one the export wrote (SHA-256), and loads
    the files into `ai_edge_litert` interpreters. Tensors are read and
    written through the signature by name, never by position.

    How `predict` proceeds depends on the export mode:

    * `"early_exit"`: the model itself stops at the first confident exit;
      it takes one sample at a time, so a batch is run sample by sample.
    * `"segments"`: the runner drives the stages: stage 1 runs on the
      whole batch, the samples its exit accepts are done, stage 2 runs on
      the rest with the state stage 1 returned, and so on.
    * `"per_exit"`: exit files are run in order on the samples not yet
      accepted; each file recomputes the backbone prefix from the input,
      so this wastes work and exists for parity checks, not speed.

    Args:
        path: the export directory, or its `litert_export.json`.
        num_threads: interpreter threads (`None`: LiteRT's default).

    Attributes:
        metadata: the sidecar as a dict.
        mode, criterion, quantization, exit_names, num_classes,
        input_shape, default_threshold, flops_per_exit: read from it.

    Example:

    ```python
    runner = LiteRTRunner("out/litert")
    probs, exit_index = runner.predict(x_test, threshold=0.9)
    ```
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        sidecar = os.path.join(path, SIDECAR) if os.path.isdir(path) else path
        if not os.path.isfile(sidecar):
            raise FileNotFoundError(
                f"No LiteRT export at {path}: {SIDECAR} not found (write one "
                "with keras_eexit.export.export_litert)."
            )
        with open(sidecar, encoding="utf-8") as f:
            self.metadata = json.load(f)
        if self.metadata.get("format") != FORMAT:
            raise ValueError(
                f"{sidecar} is not a keras-eexit LiteRT sidecar (format "
                f"{self.metadata.get('format')!r})."
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
        self.default_threshold = float(meta["default_threshold"])
        self.flops_per_exit = list(meta["flops_per_exit"])
        self._files = list(meta["files"])
        self._runners = []
        self._interpreters = []
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

    # ------------------------------------------------------------ public
    def predict(self, x, threshold=None):
        """Early-exit predictions for one sample or a batch.

        Args:
            x: one sample of shape `input_shape` or a batch of shape
                `(batch,) + input_shape`.
            threshold: the exit threshold, within the criterion's range
                (`[0, 1]` for both criteria); defaults to the sidecar's
                `default_threshold`.

        Returns:
            A tuple `(probabilities, exit_index)`: for a batch, arrays of
            shape `(batch, num_classes)` and `(batch,)` (0-based exit of
            each sample); for one sample, shapes `(num_classes,)` and `()`.
        """
        if threshold is None:
            threshold = self.default_threshold
        threshold = criteria_lib.check_threshold(self.criterion, threshold)
        batch, single = self._as_batch(x)
        if self.mode == "early_exit":
            probs, index = self._predict_early_exit(batch, threshold)
        elif self.mode == "segments":
            probs, index = self._predict_segments(batch, threshold)
        else:
            probs, index = self._predict_per_exit(batch, threshold)
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
            return x[None].astype(self.input_dtype), True
        if x.ndim == len(self.input_shape) + 1 and (
            tuple(x.shape[1:]) == self.input_shape
        ):
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

    def _predict_early_exit(self, batch, threshold):
        runner = self._runners[0]
        value = np.asarray(threshold, dtype=np.float32)
        probs = np.empty((len(batch), self.num_classes), np.float32)
        index = np.empty((len(batch),), np.int64)
        for i in range(len(batch)):
            out = runner(**{_graph.INPUT: batch[i:i + 1],
                            _graph.THRESHOLD: value})
            probs[i] = out[_graph.PROBABILITIES][0]
            index[i] = out[_graph.EXIT_INDEX][0]
        return probs, index

    def _predict_segments(self, batch, threshold):
        probs = np.empty((len(batch), self.num_classes), np.float32)
        index = np.full((len(batch),), self.num_exits - 1, np.int64)
        remaining = np.arange(len(batch))
        inputs = {_graph.INPUT: batch}
        for k in range(self.num_exits):
            result = self._run(k, inputs)
            p = result[_graph.PROBABILITIES]
            if k == self.num_exits - 1:
                probs[remaining] = p
                break
            done = criteria_lib.accepts(p, self.criterion, threshold)
            probs[remaining[done]] = p[done]
            index[remaining[done]] = k
            remaining = remaining[~done]
            if len(remaining) == 0:
                break
            inputs = {
                name: value[~done]
                for name, value in self._next_inputs(k, result).items()
            }
        return probs, index

    def _predict_per_exit(self, batch, threshold):
        probs = np.empty((len(batch), self.num_classes), np.float32)
        index = np.full((len(batch),), self.num_exits - 1, np.int64)
        remaining = np.arange(len(batch))
        for k in range(self.num_exits):
            p = self._run_exit(k, batch[remaining])
            if k == self.num_exits - 1:
                probs[remaining] = p
                break
            done = criteria_lib.accepts(p, self.criterion, threshold)
            probs[remaining[done]] = p[done]
            index[remaining[done]] = k
            remaining = remaining[~done]
            if len(remaining) == 0:
                break
        return probs, index
