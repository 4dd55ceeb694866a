"""Training-dynamics metrics per exit, read from a Keras `History`.

"Strategies at a glance" (§5.5 and Table 3) compares strategies by the
epoch of minimum validation loss, the epoch of peak accuracy, the onset of
over-fitting, the saturation epoch and the generalisation gap, per exit.
The paper names these metrics without formulas; the definitions used here
(epochs are 1-based, as Keras prints them):

- `min_val_loss_epoch`: the epoch of the lowest validation loss.
- `peak_val_accuracy_epoch`: the epoch of the highest validation accuracy
  (the first one on ties).
- `overfitting_epoch`: the first epoch after the minimum of the
  validation loss at which the validation loss is more than `tolerance`
  (relative) above that minimum while the training loss is below its value
  at the minimum: validation gets worse while training still improves.
  `None` when that never happens.
- `saturation_epoch`: the first epoch from which the validation accuracy
  stays within `band` (absolute) of its final value until the end
  ("accuracy stabilisation").
- `generalization_gap`: training accuracy minus validation accuracy at the
  last epoch (and `loss_gap`: validation loss minus training loss).

A phase of a regime that trains only some exits leaves the others flat;
the metrics then describe that flat curve as it is.
"""

import re

import numpy as np

from keras_eexit.utils.validation import invalid_value

METRICS = ("min_val_loss_epoch", "peak_val_accuracy_epoch",
           "overfitting_epoch", "saturation_epoch", "generalization_gap",
           "loss_gap")


def _exits(history):
    names = {m.group(1) for m in (re.fullmatch(
        r"(?:val_)?(exit_\w+?)_(?:loss|accuracy)", key) for key in history)
        if m}
    return sorted(names, key=lambda name: [
        int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)])


def _series(history, key):
    values = history.get(key)
    if values is None:
        return None
    return np.asarray(values, dtype=np.float64).reshape(-1)


def exit_dynamics(train_loss, val_loss, train_accuracy=None,
                  val_accuracy=None, tolerance=0.02, band=0.01):
    """The training-dynamics metrics of one exit (see the module docstring).

    Args:
        train_loss: per-epoch training loss.
        val_loss: per-epoch validation loss.
        train_accuracy: per-epoch training accuracy, or None.
        val_accuracy: per-epoch validation accuracy, or None.
        tolerance: relative rise of the validation loss above its minimum
            that marks over-fitting.
        band: absolute accuracy band of the saturation epoch.

    Returns:
        A dict with the keys of `METRICS` (None where a series is missing
        or the event does not happen).
    """
    out = dict.fromkeys(METRICS)
    val_loss = None if val_loss is None else np.asarray(val_loss, float)
    train_loss = None if train_loss is None else np.asarray(train_loss,
                                                            float)
    if val_loss is not None and val_loss.size:
        best = int(np.nanargmin(val_loss))
        out["min_val_loss_epoch"] = best + 1
        if train_loss is not None and train_loss.size == val_loss.size:
            floor = val_loss[best]
            for e in range(best + 1, val_loss.size):
                if (val_loss[e] > floor + tolerance * abs(floor)
                        and train_loss[e] < train_loss[best]):
                    out["overfitting_epoch"] = e + 1
                    break
            out["loss_gap"] = float(val_loss[-1] - train_loss[-1])
    if val_accuracy is not None and len(val_accuracy):
        acc = np.asarray(val_accuracy, float)
        out["peak_val_accuracy_epoch"] = int(np.nanargmax(acc)) + 1
        inside = np.abs(acc - acc[-1]) <= band
        outside = np.nonzero(~inside)[0]
        out["saturation_epoch"] = int(outside[-1]) + 2 if outside.size else 1
        if train_accuracy is not None and len(train_accuracy) == len(acc):
            out["generalization_gap"] = float(
                np.asarray(train_accuracy, float)[-1] - acc[-1])
    return out


def training_dynamics(history, tolerance=0.02, band=0.01):
    """`exit_dynamics` for every exit of a `History`.

    Args:
        history: a `keras.callbacks.History` or its `history` dict (keys
            `exit_k_loss`, `val_exit_k_loss`, `exit_k_accuracy`,
            `val_exit_k_accuracy`).
        tolerance: see `exit_dynamics`.
        band: see `exit_dynamics`.

    Returns:
        `{exit name: {metric: value}}`.

    Raises:
        ValueError: when the history has no per-exit validation loss (fit
            without `validation_data`).

    Example:

    ```python
    history = model.fit(x, y, validation_split=0.2, epochs=20)
    training_dynamics(history)["exit_3"]["overfitting_epoch"]
    ```
    """
    history = getattr(history, "history", history)
    if not isinstance(history, dict):
        raise invalid_value("history", "a History or its history dict",
                            type(history).__name__)
    exits = [name for name in _exits(history)
             if f"val_{name}_loss" in history]
    if not exits:
        raise ValueError(
            "training_dynamics needs per-exit validation losses "
            "('val_exit_1_loss', ...): fit with validation_data. Keys "
            f"received: {sorted(history)}.")
    return {
        name: exit_dynamics(
            _series(history, f"{name}_loss"),
            _series(history, f"val_{name}_loss"),
            _series(history, f"{name}_accuracy"),
            _series(history, f"val_{name}_accuracy"),
            tolerance=tolerance, band=band)
        for name in exits}
