"""`predict_early_exit`: batched early exit that skips the work it saves."""

import weakref

import keras
import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.evaluation.cost import check_cost
from keras_eexit.inference.compaction import EXIT_INDEX
from keras_eexit.inference.compaction import PROBABILITIES
from keras_eexit.inference.compaction import EarlyExitGraph
from keras_eexit.inference.policy import as_policy
from keras_eexit.models.input_checks import check_finite_inputs
from keras_eexit.models.input_checks import check_input_shape
from keras_eexit.utils.batches import is_batch_stream
from keras_eexit.utils.batches import iterate_batches
from keras_eexit.utils.lazy_import import is_tf_dataset
from keras_eexit.utils.validation import invalid_value

_FUNCTIONS = weakref.WeakKeyDictionary()
_HOST_RUNNERS = weakref.WeakKeyDictionary()


def early_exit_function(model, criterion, observe=None):
    """The compiled early-exit `tf.function` of `model` for `criterion`.

    One trace per model and criterion (any batch size, thresholds and
    temperatures are inputs), cached while the model lives (keyed by the
    `Criterion` object, so a criterion registered again under the same
    name is traced afresh).

    Args:
        model: a built `MultiExitModel`.
        criterion: a criterion name or `Criterion`.
        observe: see `EarlyExitGraph` (bypasses the cache).

    Returns:
        A `tf.function` `(x, thresholds, temperatures) -> {probabilities,
        exit_index}`.
    """
    import tensorflow as tf

    criterion = criteria_lib.get(criterion)
    cache = _FUNCTIONS.setdefault(model, {})
    if observe is None and criterion in cache:
        return cache[criterion]
    graph = EarlyExitGraph(model, criterion, observe=observe)
    spec = tf.TensorSpec((None,) + tuple(model.input_shape_),
                         model.input_dtype)
    vector = tf.TensorSpec((model.num_exits,), tf.float32)
    function = tf.function(graph, input_signature=[spec, vector, vector],
                           reduce_retracing=True)
    if observe is None:
        cache[criterion] = function
    return function


def _batches(model, x, batch_size):
    """The batches of `x`, each checked against the model's input shape
    and for non-finite values (a data set's batches as they come)."""
    if is_batch_stream(x):
        seen = 0
        for batch in iterate_batches(x):
            batch, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
            check_input_shape(getattr(batch, "shape", None),
                              model.input_shape_, "predict_early_exit")
            check_finite_inputs(batch, first_sample=seen, use="inference")
            seen += int(batch.shape[0])
            if batch.shape[0]:  # an empty batch has no exit to take
                yield batch
        return
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


def _check_inputs(model, x, batch_size):
    if (isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise invalid_value("batch_size", "an integer >= 1", batch_size)
    if is_tf_dataset(x):
        import tensorflow as tf

        spec, _, _ = keras.utils.unpack_x_y_sample_weight(x.element_spec)
        if not isinstance(spec, tf.TensorSpec):
            raise invalid_value(
                "x", "a tf.data.Dataset of input batches or of (x, y) "
                "pairs", f"a data set of {type(spec).__name__}")
        check_input_shape(spec.shape, model.input_shape_,
                          "predict_early_exit")
        return x
    if is_batch_stream(x):
        return x
    x = np.asarray(x)
    check_input_shape(x.shape, model.input_shape_, "predict_early_exit")
    check_finite_inputs(x, use="inference")
    return x.astype(model.input_dtype)


def host_early_exit(model, observe=None):
    """The `HostEarlyExit` runner of `model` (JAX and PyTorch backends).

    One runner per model, cached while the model lives, so its compiled
    stages (one per bucket size) serve every later call, whatever the
    criterion.

    Args:
        model: a built `MultiExitModel`.
        observe: see `HostEarlyExit` (bypasses the cache).

    Returns:
        A `keras_eexit.inference.compaction_host.HostEarlyExit`.
    """
    from keras_eexit.inference.compaction_host import HostEarlyExit

    if observe is not None:
        return HostEarlyExit(model, observe=observe)
    if model not in _HOST_RUNNERS:
        _HOST_RUNNERS[model] = HostEarlyExit(model)
    return _HOST_RUNNERS[model]


def _batch_runner(model, policy):
    """`run(batch) -> (probabilities, exit_index)` for the backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        function = early_exit_function(model, policy.criterion)
        t = tf.constant(policy.threshold_array())
        temps = tf.constant(policy.temperature_array())

        def run(batch):
            out = function(tf.convert_to_tensor(batch, model.input_dtype),
                           t, temps)
            return out[PROBABILITIES].numpy(), out[EXIT_INDEX].numpy()
        return run
    if backend in ("jax", "torch"):
        runner = host_early_exit(model)
        t = policy.threshold_array()

        def run(batch):
            batch = np.asarray(batch).astype(model.input_dtype)
            out = runner(batch, policy.criterion, t, policy.temperatures)
            return out[PROBABILITIES], out[EXIT_INDEX]
        return run
    raise invalid_value("KERAS_BACKEND", "'tensorflow', 'jax' or 'torch' "
                        "for predict_early_exit", backend)


def _batch_seconds(profile, index):
    """Seconds per sample of one served batch on a `CostProfile`: its
    exit's cost, plus, with `seconds_per_call`, the fixed cost per call of
    every stage the batch ran, shared over the batch's rows."""
    index = index.astype(np.int64)
    if profile.seconds_per_call is None:
        return profile.cost_array()[index]
    ran = profile.call_array()[index.max()]
    return profile.row_array()[index] + ran / len(index)


def predict_early_exit(model, x, thresholds=None, criterion="max_softmax",
                       temperatures=None, policy=None, batch_size=256,
                       cost=None):
    """Early-exit predictions for a batch, skipping the stages not needed.

    Each batch runs stage by stage: after stage `k` the samples its exit
    accepts are done, and only the others (every tensor of the state
    gathered down to them) enter stage `k + 1`. On TensorFlow the batch
    runs inside one `tf.function` (`compaction.py`); on JAX each stage is
    an XLA program compiled per bucket size (the continuing rows padded
    to a power of two), on PyTorch an eager call on exactly the
    continuing rows (`compaction_host.py`); on both, decisions are made
    between stages with the criterion's NumPy form. The decision rule is
    `keras_eexit.criteria`'s, the same as
    `keras_eexit.evaluation.threshold_sweep` for the same thresholds: on the
    probabilities of `evaluation.collect` the two give the same exits (the
    tests check it on every zoo family, and every criterion on JAX and
    PyTorch).

    Args:
        model: a built `MultiExitModel`.
        x: inputs, an array `(N,) + input_shape`, or a `tf.data.Dataset`
            or `keras.utils.PyDataset` of batches (or of `(x, y)` pairs).
        thresholds: a number (every exit) or one per exit, in the
            criterion's range (default: the criterion's default).
        criterion: `"max_softmax"`, `"entropy"`, `"patience"`,
            `"static"` or a registered criterion (see
            `keras_eexit.criteria`).
        temperatures: optional number or one per exit (logits / T before
            the softmax).
        policy: an `ExitPolicy` instead of the three arguments above.
        batch_size: batch size for array inputs (an integer >= 1).
        cost: how the third output counts: `None`/`"flops"` (FLOPs) or a
            `CostProfile` of this model (measured seconds per sample; a
            profile of another model is refused). With the profile's
            `seconds_per_call`, each sample pays its exit's cost per row
            and a share of the fixed cost per call of every stage its
            batch ran (the stage's fixed seconds over the batch's rows).

    Returns:
        A tuple `(probabilities, exit_index, cost)` of NumPy arrays:
        `(N, C)` float32 probabilities of the exit each sample took,
        `(N,)` int 0-based exit indices and `(N,)` cumulative cost of
        each sample at its exit: int64 FLOPs (`model.flops_per_exit()`),
        or float64 seconds per sample with a `CostProfile`.

    Example:

    ```python
    probs, exit_index, flops = predict_early_exit(model, x_test, 0.9)
    print(f"mean cost {flops.mean() / model.flops_per_exit()[-1]:.0%}")
    ```
    """
    policy = as_policy(model.num_exits, thresholds, criterion, temperatures,
                       policy)
    profile = check_cost(cost)
    if profile is not None:
        profile.check_model(model)
    x = _check_inputs(model, x, batch_size)
    run = _batch_runner(model, policy)
    probs, index, charged = [], [], []
    for batch in _batches(model, x, batch_size):
        batch_probs, batch_index = run(batch)
        probs.append(batch_probs)
        index.append(batch_index)
        if profile is not None:
            charged.append(_batch_seconds(profile, np.asarray(batch_index)))
    if not probs:
        raise ValueError("predict_early_exit received no samples.")
    index = np.concatenate(index).astype(np.int64)
    if profile is not None:
        return np.concatenate(probs), index, np.concatenate(charged)
    flops = np.asarray(model.flops_per_exit(), dtype=np.int64)[index]
    return np.concatenate(probs), index, flops
