"""`StopOnNonFinite`: stop at the first NaN/Inf loss, say where it came from."""

import math

import keras


class NonFiniteLossError(ValueError):
    """Raised when a logged loss becomes NaN or infinite."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first batch whose logged losses are not finite.

    The error names every loss that went non-finite — per exit
    (`exit_2_loss`: the cross-entropy of exit 2) and per objective term
    (`distillation_loss`, `ewc_loss`, `lwf_loss`) — and the last good
    checkpoint, so a run never goes on to save a NaN model.

    Args:
        checkpoint: a path or description of the last good checkpoint, shown
            in the message (for example the `BackupAndRestore` directory).

    Example:

    ```python
    model.fit(x, y, callbacks=[StopOnNonFinite("runs/a/backup")])
    ```
    """

    def __init__(self, checkpoint=None):
        super().__init__()
        self.checkpoint = checkpoint

    def on_train_batch_end(self, batch, logs=None):
        bad = []
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(number):
                bad.append(key)
        if not bad:
            return
        losses = [k for k in bad if k.endswith("loss")] or bad
        where = ", ".join(_describe(k) for k in sorted(losses))
        saved = (f" The last good checkpoint is {self.checkpoint}."
                 if self.checkpoint else " Nothing was saved.")
        raise NonFiniteLossError(
            f"Training stopped at epoch {self._epoch + 1}, batch {batch}: "
            f"non-finite values in {where}.{saved} Check the data for "
            "NaN/Inf, and lower the learning rate."
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_begin(self, logs=None):
        self._epoch = 0


def _describe(key):
    if key.startswith("exit_") and key.endswith("_loss"):
        return f"{key} (cross-entropy of {key[:-5]})"
    if key == "loss":
        return "loss (the total)"
    if key.endswith("_loss"):
        return f"{key} (objective term {key[:-5]!r})"
    return key
