"""`RegimeState`: the resumable state of a regime, stored as model weights."""

import keras
import numpy as np

from keras_eexit.regimes import signature as signatures
from keras_eexit.utils.variables import assign_copies


class RegimeState(keras.layers.Layer):
    """Variables holding a regime's progress, teacher and best weights.

    The regime attaches this layer to the model as `model.regime_state` for
    the duration of `fit`. Because it is then part of the model's weights,
    `keras.callbacks.BackupAndRestore` saves and restores it with everything
    else: a killed run resumes in the same phase, with the same teacher
    snapshot and early-stopping counters.

    Memory: a teacher snapshot costs one copy of the model's weights (plus
    one forward pass of the teacher per training step); restoring the best
    weights of a monitored phase costs another copy; a reference of exit ν
    (`Phase(reference_exit=ν)`) a copy of segments 1..ν and heads 1..ν.

    Args:
        model: the `MultiExitModel` being trained.
        teacher: whether to keep a frozen teacher copy of the model.
        best_weights: whether to keep a copy of the weights for
            `restore_best`.
        fisher: whether to keep a `keras_eexit.fisher.FisherStore` (EWC's
            Fisher diagonal, anchors and a running sum: three copies of
            the segments' trainable weights) as `fisher_store`.
        monitors: the most metrics one phase monitors (one early-stopping
            best value and wait counter each).
        references: exit numbers whose frozen reference copies phases keep
            (`Phase(reference_exit=...)`).
        signature: the regime's signature text
            (`keras_eexit.regimes.signature.regime_signature`), saved with
            the state: loading a state saved under another signature
            loads nothing and `check_loaded` refuses it.
    """

    def __init__(self, model, teacher=False, best_weights=False,
                 fisher=False, monitors=1, references=(), signature="",
                 **kwargs):
        super().__init__(name="regime_state", trainable=False, **kwargs)
        self.signature = signature
        self.signature_hash = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False,
            name="signature_hash")
        self.signature_hash.assign(signatures.signature_hash(signature))
        self.signature_text = self.add_weight(
            shape=(signatures.SIGNATURE_BYTES,), dtype="uint8",
            initializer="zeros", trainable=False, name="signature_text")
        self.signature_text.assign(signatures.encode(signature))
        object.__setattr__(self, "_loaded", None)
        self.phase_index = self.add_weight(
            shape=(), dtype="int32", initializer="zeros",
            trainable=False, name="phase_index")
        self.phase_start = self.add_weight(
            shape=(), dtype="int32", initializer="zeros",
            trainable=False, name="phase_start")
        self.best = self.add_weight(
            shape=(max(1, monitors),), dtype="float32", initializer="zeros",
            trainable=False, name="best")
        self.wait = self.add_weight(
            shape=(max(1, monitors),), dtype="int32", initializer="zeros",
            trainable=False, name="wait")
        self.teacher = None
        if teacher:
            from keras_eexit.models.multi_exit_model import MultiExitModel

            clone = MultiExitModel.from_config(model.get_config())
            clone.trainable = False
            self.teacher = clone
        self.best_weights = []
        if best_weights:
            self.best_weights = [
                self.add_weight(shape=w.shape, dtype=w.dtype,
                                initializer="zeros", trainable=False,
                                name=f"best_{i}")
                for i, w in enumerate(_model_weights(model))
            ]
        # EWC's Fisher diagonal and anchors (keras_eexit.fisher).
        self.fisher_store = None
        if fisher:
            from keras_eexit.fisher.fisher_store import FisherStore

            self.fisher_store = FisherStore(model)
        self.references = {
            exit: _truncated_clone(model, exit) for exit in sorted(
                set(references))}
        self.built = True

    def load_own_variables(self, store):
        # The signature comes first: a state saved under another regime
        # (or none) loads nothing, and `check_loaded` names the difference.
        keys = set(store.keys())
        if not {"0", "1"} <= keys:
            object.__setattr__(self, "_loaded", ("none", None))
            return
        saved_hash = int(np.asarray(store["0"]))
        saved_text = signatures.decode(np.asarray(store["1"]))
        if saved_hash not in (
                signatures.signature_hash(self.signature),
                signatures.legacy_signature_hash(self.signature)):
            object.__setattr__(self, "_loaded", ("other", saved_text))
            return
        object.__setattr__(self, "_loaded", ("same", saved_text))
        # A file from before the 32-bit hash holds a value this variable
        # cannot take: it loads as today's hash of the same signature.
        values = {key: store[key] for key in keys}
        values["0"] = np.asarray(signatures.signature_hash(self.signature),
                                 "int32")
        super().load_own_variables(values)

    def check_loaded(self, filepath):
        """Refuses a file whose regime state came from another regime.

        Called by `MultiExitModel.load_weights` (and so by
        `keras.callbacks.BackupAndRestore` when it resumes) after it read
        this state.

        Args:
            filepath: the file loaded, for the message.

        Raises:
            ValueError: one line naming the saved regime and this one.
        """
        kind, saved = self._loaded or ("same", None)
        object.__setattr__(self, "_loaded", None)
        if kind == "same":
            return
        if kind == "none":
            what = ("it holds no regime progress (saved outside a regime's "
                    "fit, or by an older keras-eexit)")
        else:
            what = "it was saved under another regime: " + (
                signatures.difference(saved, self.signature))
        raise ValueError(
            f"Cannot resume from {filepath}: {what}. Resume with the regime "
            "it was saved with, or delete the backup to start over.")

    def reset_wait(self):
        """Early-stopping counters back to 0."""
        self.wait.assign(np.zeros(self.wait.shape, "int32"))

    def snapshot_reference(self, model, exit):
        """Copies segments 1..exit and heads 1..exit into exit's reference."""
        reference = self.references[exit]
        assign_copies(_model_weights(reference), _model_weights(model, exit))

    def reference_outputs(self, exit, x):
        """Logits of exit `exit` (1-based) of its frozen reference copy."""
        if exit not in self.references:
            raise ValueError(
                f"This objective reads the reference output of exit {exit}, "
                "but no phase of the regime keeps one "
                f"(`Phase(reference_exit={exit})` on the phase that trains "
                "it)."
            )
        from keras_eexit.chain import run_to_exit

        return run_to_exit(self.references[exit], x, exit - 1, False)

    def teacher_outputs(self, x):
        """All exits' logits of the frozen snapshot (inference mode)."""
        if self.teacher is None:
            raise ValueError(
                "This objective reads a teacher snapshot, but no phase of "
                "the regime takes one (`Phase(snapshot_teacher=True)`)."
            )
        return self.teacher(x, training=False)

    def reset(self):
        """Back to the start of the first phase."""
        self.phase_index.assign(0)
        self.phase_start.assign(0)
        self.reset_wait()

    def snapshot_teacher(self, model):
        """Copies the model's current weights into the frozen teacher."""
        assign_copies(_model_weights(self.teacher), _model_weights(model))

    def teacher_logits(self, x):
        """Final-exit logits of the teacher snapshot (inference mode)."""
        out = self.teacher_outputs(x)
        return out[self.teacher.exit_names[-1]]

    def save_best(self, model):
        assign_copies(self.best_weights, _model_weights(model))

    def restore_best(self, model):
        assign_copies(_model_weights(model), self.best_weights)


def _model_weights(model, upto=None):
    """The model's own weights (segments and heads 1..upto), in order."""
    upto = len(model.segments) if upto is None else upto
    weights = []
    for layer in list(model.segments[:upto]) + list(model.heads[:upto]):
        weights.extend(layer.weights)
    return weights


def _truncated_clone(model, exit):
    """A frozen copy of stages 1..exit of `model` (exits 1..exit)."""
    from keras_eexit.models.multi_exit_model import MultiExitModel

    config = dict(model.get_config())
    for key in ("segments", "heads", "exit_names"):
        config[key] = list(config[key])[:exit]
    clone = MultiExitModel.from_config(config)
    clone.trainable = False
    return clone
