"""Mean damping-neuron output per exit (the damping paper's Table 5)."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DampingOutputs:
    """Per-exit accuracy and mean damping-neuron softmax over a data set.

    Attributes:
        accuracy: float array `(num_exits,)`, top-1 accuracy over the N
            class units.
        damping: float array `(num_exits,)`, the mean over samples of the
            damping unit's softmax value `F^k[N+1]` (softmax over all N + 1
            units).
        exit_names: the model's exit names.
    """

    accuracy: np.ndarray
    damping: np.ndarray
    exit_names: tuple

    def table(self):
        """The paper's Table 5 row: `"61.53 (0.006)"` per exit (accuracy in
        percent, mean damping output in parentheses)."""
        return [f"{100 * a:.2f} ({d:.3f})"
                for a, d in zip(self.accuracy, self.damping)]


def damping_outputs(model, data, batch_size=256):
    """The damping paper's Table 5 analysis: mean damping output per exit.

    For each exit, the average over the samples of `data` of the damping
    neuron's value after the softmax over all N + 1 units
    ("the values of damping neurons, specifically the damping neuron
    post-Softmax", sec. 3.4; Table 5 reports them on the test set next to
    each classifier's accuracy). The paper observes larger values at
    deeper exits (they fit more samples, so damping engages more often),
    smaller ones with the power-sqrt loss, and the order reversed when
    gradients flow through the dynamic weights.

    Args:
        model: a `MultiExitModel` whose heads all have a damping unit.
        data: a `tf.data.Dataset` or `keras.utils.PyDataset` of `(x, y)`
            batches, or a tuple `(x, y)` of arrays.
        batch_size: batch size used when `data` is arrays.

    Returns:
        A `DampingOutputs`.

    Example:

    ```python
    report = damping_outputs(model, (x_test, y_test))
    report.damping  # array([0.006, 0.008, ...]) (paper, Table 5)
    ```

    References:
        - Diminishing Non-important Gradients for Training Dynamic
            Early-Exiting Networks, appendix C.2, Table 5.
    """
    from keras import ops

    from keras_eexit.evaluation.collect import inference_function
    from keras_eexit.losses.damping_functions import check_damping_heads
    from keras_eexit.losses.labels import label_format

    from keras_eexit.utils.batches import array_batches
    from keras_eexit.utils.batches import is_batch_stream
    from keras_eexit.utils.batches import iterate_batches

    check_damping_heads(model, "damping_outputs")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data = array_batches(data, batch_size)
    elif is_batch_stream(data):
        data = iterate_batches(data)
    predict = inference_function(model)
    classes = model.num_classes
    damping = np.zeros(model.num_exits)
    correct = np.zeros(model.num_exits)
    seen = 0
    for batch in data:
        x, y = batch[0], np.asarray(batch[1])
        if label_format(y.shape, classes, "the model") == "dense":
            y = y.argmax(-1)
        y = y.reshape(-1)
        out = predict(x)
        for k, name in enumerate(model.exit_names):
            probs = ops.convert_to_numpy(
                ops.softmax(ops.cast(out[name], "float32")))
            damping[k] += probs[:, -1].sum()
            correct[k] += (probs[:, :-1].argmax(-1) == y).sum()
        seen += len(y)
    if seen == 0:
        raise ValueError("The data set is empty: nothing to evaluate.")
    return DampingOutputs(accuracy=correct / seen, damping=damping / seen,
                          exit_names=tuple(model.exit_names))
