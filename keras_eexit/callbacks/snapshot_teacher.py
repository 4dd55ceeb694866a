"""`SnapshotTeacher`: a frozen copy of the model taken when `fit` starts."""

import keras

from keras_eexit.utils.variables import assign_copies


class SnapshotTeacher(keras.callbacks.Callback):
    """Keeps a frozen copy of the model, taken when training begins.

    For custom training loops (LwF references, distillation teachers)
    built from several `fit` calls: `.teacher` is a `MultiExitModel` with
    the weights the model had when the first `fit` using this callback
    started (call `take()` to refresh it). It is attached to the model
    without Keras tracking (not part of saved `.keras` files) but saved by
    `model.save_weights`, so `keras.callbacks.BackupAndRestore` restores it:
    put the `BackupAndRestore` callback after this one and a resumed run
    keeps the original snapshot. The regimes take their snapshots
    themselves (`Phase(snapshot_teacher=True)`).

    Example:

    ```python
    snap = SnapshotTeacher()
    model.fit(x, y, epochs=3, callbacks=[snap])
    snap.teacher(x)["exit_1"]
    ```
    """

    ATTRIBUTE = "eexit_snapshot_teacher"

    @property
    def teacher(self):
        """The frozen copy (a `MultiExitModel`)."""
        return getattr(self.model, self.ATTRIBUTE, None)

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, self.ATTRIBUTE, None) is None:
            from keras_eexit.models.multi_exit_model import MultiExitModel

            clone = MultiExitModel.from_config(model.get_config())
            clone.trainable = False
            model.attach_state(self.ATTRIBUTE, clone)
            self._fresh = True
        else:
            self._fresh = False

    def on_train_begin(self, logs=None):
        if self._fresh:
            self.take()
            self._fresh = False

    def take(self):
        """Copies the model's current weights into the teacher."""
        assign_copies(self.teacher.weights, self.model.weights)
        # On JAX a traced step holds the teacher's values as constants.
        self.model.refresh_train_function()
