"""`EpochLine`: one short line per epoch instead of Keras' full log dump."""

import time

import keras


def _per_exit(logs, key):
    values = []
    k = 1
    while f"exit_{k}_{key}" in logs:
        values.append(float(logs[f"exit_{k}_{key}"]))
        k += 1
    return values


def _accuracies(values):
    return "/".join(f"{v:.3f}".lstrip("0") if v < 1 else "1.00"
                    for v in values)


def epoch_line(epoch, epochs, logs, seconds, phase_names=None):
    """The compact text of one epoch.

    Args:
        epoch: the 0-based epoch index.
        epochs: the planned number of epochs (or `None`).
        logs: the epoch's logs (`loss`, `exit_k_accuracy`, `val_...`, the
            regime's `phase` index).
        seconds: the epoch's duration.
        phase_names: the regime's phase names, to name the phase.

    Returns:
        E.g. `"epoch  3/12  phase 2/2 heads  loss 0.5120  acc
        .410/.930/.970  val_acc .400/.920/.960  1.2 s"`.
    """
    width = len(str(epochs)) if epochs else 1
    parts = [f"epoch {epoch + 1:>{width}}" + (f"/{epochs}" if epochs else "")]
    if "phase" in logs:
        index = int(round(float(logs["phase"])))  # an index, not a float
        name = ""
        if phase_names and 0 <= index < len(phase_names):
            name = f" {phase_names[index]}"
        count = f"/{len(phase_names)}" if phase_names else ""
        parts.append(f"phase {index + 1}{count}{name}")
    if "loss" in logs:
        parts.append(f"loss {float(logs['loss']):.4f}")
    accuracy = _per_exit(logs, "accuracy")
    if accuracy:
        parts.append(f"acc {_accuracies(accuracy)}")
    if "val_loss" in logs:
        parts.append(f"val_loss {float(logs['val_loss']):.4f}")
    val_accuracy = _per_exit(logs, "accuracy") and [
        float(logs[f"val_exit_{k}_accuracy"])
        for k in range(1, len(accuracy) + 1)
        if f"val_exit_{k}_accuracy" in logs]
    if val_accuracy:
        parts.append(f"val_acc {_accuracies(val_accuracy)}")
    parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


class EpochLine(keras.callbacks.Callback):
    """Prints `epoch_line` at the end of every epoch.

    Args:
        regime: the run's regime (to name its phases), or `None`.
        print_fn: where lines go (default `print`, flushed).
    """

    def __init__(self, regime=None, print_fn=None):
        super().__init__()
        self.regime = regime
        self.print_fn = print_fn or (lambda text: print(text, flush=True))
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        phases = getattr(self.regime, "phases", None)
        names = [p.name for p in phases] if phases else None
        seconds = time.perf_counter() - (self._start or time.perf_counter())
        self.print_fn(epoch_line(epoch, (self.params or {}).get("epochs"),
                                 logs or {}, seconds, names))
