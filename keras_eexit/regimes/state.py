"""`RegimeState`: the resumable state of a regime, stored as model weights."""

import keras


class RegimeState(keras.layers.Layer):
    """Variables holding a regime's progress, teacher and best weights.

    The regime attaches this layer to the model as `model.regime_state` for
    the duration of `fit`. Because it is then part of the model's weights,
    `keras.callbacks.BackupAndRestore` saves and restores it with everything
    else: a killed run resumes in the same phase, with the same teacher
    snapshot and early-stopping counters.

    Memory: a teacher snapshot costs one copy of the model's weights (plus
    one forward pass of the teacher per training step); restoring the best
    weights of a monitored phase costs another copy.

    Args:
        model: the `MultiExitModel` being trained.
        teacher: whether to keep a frozen teacher copy of the model.
        best_weights: whether to keep a copy of the weights for
            `restore_best`.
        fisher: whether to keep a `keras_eexit.fisher.FisherStore` (EWC's
            Fisher diagonal, anchors and a running sum: three copies of
            the segments' trainable weights) as `fisher_store`.
    """

    def __init__(self, model, teacher=False, best_weights=False,
                 fisher=False, **kwargs):
        super().__init__(name="regime_state", trainable=False, **kwargs)
        self.phase_index = self.add_weight(
            shape=(), dtype="int64", initializer="zeros",
            trainable=False, name="phase_index")
        self.phase_start = self.add_weight(
            shape=(), dtype="int64", initializer="zeros",
            trainable=False, name="phase_start")
        self.best = self.add_weight(
            shape=(), dtype="float64", initializer="zeros",
            trainable=False, name="best")
        self.wait = self.add_weight(
            shape=(), dtype="int64", initializer="zeros",
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
        self.built = True

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
        self.wait.assign(0)

    def snapshot_teacher(self, model):
        """Copies the model's current weights into the frozen teacher."""
        for target, source in zip(_model_weights(self.teacher),
                                  _model_weights(model)):
            target.assign(source)

    def teacher_logits(self, x):
        """Final-exit logits of the teacher snapshot (inference mode)."""
        out = self.teacher_outputs(x)
        return out[self.teacher.exit_names[-1]]

    def save_best(self, model):
        for target, source in zip(self.best_weights, _model_weights(model)):
            target.assign(source)

    def restore_best(self, model):
        for source, target in zip(self.best_weights, _model_weights(model)):
            target.assign(source)


def _model_weights(model):
    """The model's own weights (segments and heads), in a fixed order."""
    weights = []
    for layer in list(model.segments) + list(model.heads):
        weights.extend(layer.weights)
    return weights
