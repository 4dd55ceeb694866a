"""One pass over a data set: every exit's probabilities, labels and costs."""

import dataclasses
import weakref

import numpy as np
from keras import ops

from keras_eexit.utils.batches import array_batches
from keras_eexit.utils.batches import is_batch_stream
from keras_eexit.utils.batches import iterate_batches
from keras_eexit.utils.compiled import compile_layers_call

# One compiled inference call per model, reused by every `collect` (a new
# `tf.function` per call would trace again each time, and TensorFlow warns
# about repeated retracing after a few evaluations; on JAX, XLA would
# compile again).
_INFERENCE_FUNCTIONS = weakref.WeakKeyDictionary()


def inference_function(model):
    """The model's compiled `model(x, training=False)`, traced once.

    Kept per model (without keeping the model alive; rebuilt if its
    stages or heads were replaced) and compiled for the backend
    (`utils.compiled.compile_layers_call`: a `tf.function` with relaxed
    shapes on TensorFlow, `jax.jit` on JAX), so evaluating batches of any
    size, and evaluating the same model again after more training,
    reuses the trace; the weights are read at every call.

    Args:
        model: a `MultiExitModel`.

    Returns:
        A function mapping a batch of inputs to the model's outputs.
    """
    # A model whose stages or heads were replaced gets a new trace.
    layers = tuple(id(layer) for layer in
                   list(model.segments) + list(model.heads))
    layers_then, function = _INFERENCE_FUNCTIONS.get(model, (None, None))
    if function is None or layers_then != layers:
        ref = weakref.ref(model)
        function = compile_layers_call(
            model, lambda x: ref()(x, training=False))
        _INFERENCE_FUNCTIONS[model] = (layers, function)
    return function


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
        base_flops: FLOPs per sample of the base network (the backbone and
            the final head, no internal classifier: `model.base_flops()`),
            the denominator of Kubaty et al.'s budget table; None when
            unknown.
        flops_convention: how `flops` and `base_flops` were counted:
            `"keras_eexit"` (2 per multiply-add of convolutions and matrix
            products) or `"fvcore"` (Kubaty et al.'s reference; see
            `keras_eexit.models.flops`).
        costs: `{convention: (per-exit FLOPs, base FLOPs)}` for every
            convention `collect` counted (both), so that
            `with_convention` can switch without the model; None for
            outputs built by hand.
        cost_unit: the unit of `flops`: `"FLOPs"`, or `"s"` once a
            measured `CostProfile` replaced them
            (`keras_eexit.evaluation.cost.resolve_cost`).
    """

    probs: np.ndarray
    labels: np.ndarray
    flops: np.ndarray
    params: np.ndarray
    exit_names: tuple
    base_flops: float = None
    flops_convention: str = "keras_eexit"
    costs: dict = None
    cost_unit: str = "FLOPs"

    def with_convention(self, convention):
        """These outputs with `flops`/`base_flops` in another convention.

        Args:
            convention: `"keras_eexit"` or `"fvcore"`.

        Returns:
            An `ExitOutputs` (self when already in `convention`), in
            FLOPs (also when these outputs carried measured seconds).

        Raises:
            ValueError: when the outputs do not carry that convention's
                costs (built by hand; `collect` counts both).
        """
        if convention == self.flops_convention:
            return self
        if not self.costs or convention not in self.costs:
            raise ValueError(
                f"These outputs carry no {convention!r} FLOPs (known: "
                f"{sorted(self.costs or [self.flops_convention])}); collect "
                "them with keras_eexit.evaluation.collect, which counts "
                "both conventions.")
        flops, base = self.costs[convention]
        return dataclasses.replace(
            self, flops=np.asarray(flops, dtype="int64"),
            base_flops=None if base is None else float(base),
            flops_convention=convention, cost_unit="FLOPs")

    def accuracy(self):
        """Per-exit top-1 accuracy, an array of shape `(num_exits,)`."""
        return (self.probs.argmax(-1) == self.labels[None, :]).mean(axis=1)


def collect(model, data, batch_size=256, damping_probs="renormalized",
            convention="keras_eexit"):
    """Runs `model` once over `data` and keeps every exit's probabilities.

    Exits with a damping head (`keras_eexit.layers.DampingHead`, N + 1
    logits) keep probabilities over their N classes only; the damping unit
    stands for no class. `damping_probs` chooses how (see
    `keras_eexit.layers.class_probabilities`): `"renormalized"` (default)
    takes the softmax of the N class logits, so rows sum to 1 like a plain
    head's; `"n_plus_1"` keeps the N class entries of the softmax over all
    N + 1 units, so confidence is lowered by the damping unit's mass. The
    arg-max, and so accuracy, is the same either way.

    The outputs also carry the model's per-exit and base-network FLOPs
    (`model.base_flops()`, the denominator of `budget_table`), counted in
    `convention`, and the other convention's in `costs`
    (`ExitOutputs.with_convention`).

    Args:
        model: a `MultiExitModel`.
        data: a `tf.data.Dataset` or `keras.utils.PyDataset` of `(x, y)`
            (or `(x, y, sample_weight)`) batches, or a tuple `(x, y)` of
            arrays. Labels are required.
        batch_size: batch size used when `data` is arrays.
        damping_probs: `"renormalized"` or `"n_plus_1"`, for damping heads.
        convention: FLOP convention of `flops` and `base_flops`:
            `"keras_eexit"` (default) or `"fvcore"` (Kubaty et al.'s
            reference code; see `keras_eexit.models.flops`).

    Returns:
        An `ExitOutputs`.

    Example:

    ```python
    out = collect(model, splits.test)
    out.accuracy()  # array([0.91, 0.96, 0.98])
    ```
    """
    from keras_eexit.layers.damping_head import PROBABILITY_MODES
    from keras_eexit.layers.damping_head import class_probabilities
    from keras_eexit.chain import has_damping_unit
    from keras_eexit.utils.validation import check_choice

    from keras_eexit.models import costs
    from keras_eexit.models.flops import CONVENTIONS

    check_choice("damping_probs", damping_probs, PROBABILITY_MODES)
    check_choice("convention", convention, CONVENTIONS)
    damped = [has_damping_unit(head) for head in model.heads]
    data = _labelled_batches(data, batch_size)
    predict = inference_function(model)
    probs = [[] for _ in model.exit_names]
    labels = []
    seen = 0
    for batch in data:
        x, y = batch[0], batch[1]
        _check_batch(model, x, y, seen)
        seen += int(np.shape(y)[0])
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
    counted = {}
    for name in CONVENTIONS:
        try:
            stage = costs.stage_costs(model, name)
        except ValueError:
            if name == convention:
                raise
            continue  # e.g. an op without static shapes: not comparable
        counted[name] = (tuple(int(f) for f in stage.cumulative_flops()),
                         float(stage.base_flops()))
    stages = costs.stage_costs(model, convention)
    return ExitOutputs(
        probs=np.stack([np.concatenate(p) for p in probs]).astype("float32"),
        labels=np.concatenate(labels).astype("int64"),
        flops=np.asarray(stages.cumulative_flops(), dtype="int64"),
        params=np.asarray(model.params_per_exit(), dtype="int64"),
        exit_names=tuple(model.exit_names),
        base_flops=float(stages.base_flops()),
        flops_convention=convention,
        costs=counted,
    )


def _check_batch(model, x, y, first_sample):
    """Inputs of another shape than the model's, NaN inputs and labels
    outside the model's classes, named at once (not later as "probabilities
    that do not sum to 1" or a wrong accuracy)."""
    from keras_eexit.models.input_checks import check_finite_inputs
    from keras_eexit.models.input_checks import check_input_shape
    from keras_eexit.models.input_checks import check_label_values

    check_input_shape(getattr(x, "shape", None), model.input_shape_,
                      "collect")
    check_finite_inputs(ops.convert_to_numpy(x) if not isinstance(
        x, (dict, tuple, list)) else x, first_sample, use="inference")
    if model.num_classes is not None:
        check_label_values(np.asarray(y), model.num_classes)


def _labelled_batches(data, batch_size):
    """`data` as an iterable of `(x, y, ...)` batches, or a clear error."""
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(
                "collect needs labelled data: a tuple (x, y) of arrays or a "
                f"data set of (x, y) batches; received a "
                f"{type(data).__name__} of {len(data)} element(s).")
        return array_batches(data, batch_size)
    if not is_batch_stream(data) and hasattr(data, "shape"):
        raise ValueError(
            "collect needs labelled data to measure accuracy: pass (x, y) "
            "or a data set of (x, y) batches; received inputs "
            f"without labels (an array of shape {tuple(data.shape)}).")
    spec = getattr(data, "element_spec", None)
    if spec is not None and not (isinstance(spec, tuple) and len(spec) >= 2):
        raise ValueError(
            "collect needs labelled data to measure accuracy: a "
            "tf.data.Dataset of (x, y) batches; this data set yields "
            f"{_describe_spec(spec)}. Map it to (x, y) pairs first.")
    if is_batch_stream(data):
        return iterate_batches(data)
    return data


def _describe_spec(spec):
    if isinstance(spec, tuple):
        return f"tuples of {len(spec)} element(s)"
    if isinstance(spec, dict):
        return f"dicts with keys {sorted(spec)}"
    shape = getattr(spec, "shape", None)
    return f"single tensors of shape {shape}" if shape is not None else (
        type(spec).__name__)


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
