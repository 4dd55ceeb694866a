"""One pass over a data set: every exit's probabilities, labels and costs."""

import dataclasses

import numpy as np
from keras import ops


@dataclasses.dataclass(frozen=True)
class ExitOutputs:
    """The cached result of running a multi-exit model once over data.

    Attributes:
        probs: float32 array `(num_exits, num_samples, num_classes)`, the
            softmax of each exit's logits (over the N classes for damping
            heads, see `collect`).
        labels: int array `(num_samples,)` (one-hot labels are reduced with
            argmax).
        flops: int array `(num_exits,)`, cumulative FLOPs per sample to reach
            and evaluate each exit.
        params: int array `(num_exits,)`, cumulative parameters per exit.
        exit_names: the model's exit names.
    """

    probs: np.ndarray
    labels: np.ndarray
    flops: np.ndarray
    params: np.ndarray
    exit_names: tuple

    def accuracy(self):
        """Per-exit top-1 accuracy, an array of shape `(num_exits,)`."""
        return (self.probs.argmax(-1) == self.labels[None, :]).mean(axis=1)


def collect(model, data, batch_size=256, damping_probs="renormalized"):
    """Runs `model` once over `data` and keeps every exit's probabilities.

    Exits with a damping head (`keras_eexit.layers.DampingHead`, N + 1
    logits) keep probabilities over their N classes only; the damping unit
    stands for no class. `damping_probs` chooses how (see
    `keras_eexit.layers.class_probabilities`): `"renormalized"` (default)
    takes the softmax of the N class logits, so rows sum to 1 like a plain
    head's; `"n_plus_1"` keeps the N class entries of the softmax over all
    N + 1 units, so confidence is lowered by the damping unit's mass. The
    arg-max, and so accuracy, is the same either way.

    Args:
        model: a `MultiExitModel`.
        data: a `tf.data.Dataset` of `(x, y)` batches, or a tuple `(x, y)` of
            arrays.
        batch_size: batch size used when `data` is arrays.
        damping_probs: `"renormalized"` or `"n_plus_1"`, for damping heads.

    Returns:
        An `ExitOutputs`.

    Example:

    ```python
    out = collect(model, splits.test)
    out.accuracy()  # array([0.91, 0.96, 0.98])
    ```
    """
    import tensorflow as tf

    from keras_eexit.layers.damping_head import PROBABILITY_MODES
    from keras_eexit.layers.damping_head import class_probabilities
    from keras_eexit.chain import has_damping_unit
    from keras_eexit.utils.validation import check_choice

    check_choice("damping_probs", damping_probs, PROBABILITY_MODES)
    damped = [has_damping_unit(head) for head in model.heads]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data = tf.data.Dataset.from_tensor_slices(tuple(data)).batch(
            batch_size
        )
    predict = tf.function(lambda x: model(x, training=False))
    probs = [[] for _ in model.exit_names]
    labels = []
    for x, y in data:
        out = predict(x)
        for k, name in enumerate(model.exit_names):
            logits = ops.cast(out[name], "float32")
            probs[k].append(ops.convert_to_numpy(
                class_probabilities(logits, damping_probs) if damped[k]
                else ops.softmax(logits)
            ))
        y = np.asarray(y)
        labels.append(y.argmax(-1) if y.ndim == 2 and y.shape[-1] > 1
                      else y.reshape(-1))
    if not labels:
        raise ValueError("The data set is empty: nothing to evaluate.")
    return ExitOutputs(
        probs=np.stack([np.concatenate(p) for p in probs]).astype("float32"),
        labels=np.concatenate(labels).astype("int64"),
        flops=np.asarray(model.flops_per_exit(), dtype="int64"),
        params=np.asarray(model.params_per_exit(), dtype="int64"),
        exit_names=tuple(model.exit_names),
    )


def exit_table(outputs):
    """Per-exit rows: exit name, cumulative params, FLOPs and accuracy.

    Args:
        outputs: an `ExitOutputs` from `collect`.

    Returns:
        A list of dicts with keys `exit`, `params`, `flops`, `accuracy`.
    """
    accuracy = outputs.accuracy()
    return [
        {
            "exit": name,
            "params": int(outputs.params[k]),
            "flops": int(outputs.flops[k]),
            "accuracy": float(accuracy[k]),
        }
        for k, name in enumerate(outputs.exit_names)
    ]


def format_table(rows):
    """Formats `exit_table` rows as an aligned text table."""
    lines = [f"{'exit':<10}{'params':>12}{'FLOPs':>14}{'accuracy':>10}"]
    for r in rows:
        lines.append(
            f"{r['exit']:<10}{r['params']:>12,}{r['flops']:>14,}"
            f"{r['accuracy']:>10.4f}"
        )
    return "\n".join(lines)
