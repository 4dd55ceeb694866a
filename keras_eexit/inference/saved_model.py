"""`export_saved_model`: batched early exit as a SavedModel signature."""

import os

from keras_eexit.inference.compaction import EXIT_INDEX
from keras_eexit.inference.compaction import PROBABILITIES
from keras_eexit.inference.compaction import EarlyExitGraph
from keras_eexit.inference.graph_checks import InputChecks
from keras_eexit.inference.policy import as_policy
from keras_eexit.utils.atomic import atomic_directory
from keras_eexit.utils.lazy_import import require_tensorflow

SIGNATURE = "serving_default"
"""The signature TF Serving calls by default."""

SIGNATURE_WITH_THRESHOLDS = "with_thresholds"
"""The signature that also takes per-exit `thresholds` as an input."""


def export_saved_model(model, path, thresholds=None, criterion="max_softmax",
                       temperatures=None, policy=None):
    """Writes a SavedModel that serves batched early exit.

    The graph is `predict_early_exit`'s (compaction: only the samples no
    exit accepted yet run the next stage), with the model's variables.
    Two signatures, loadable by `tf.saved_model.load` and TF Serving:

    * `serving_default`: `inputs` `(batch,) + input_shape` -> outputs
      `probabilities` `(batch, C)` float32, `exit_index` `(batch,)` int32
      (0-based) and `flops` `(batch,)` int64, with the policy's thresholds
      (and temperatures) baked in;
    * `with_thresholds`: the same plus an input `thresholds` `(K,)`
      float32, chosen per request.

    The graph checks every call, for clients that never import keras_eexit:
    an input of the wrong shape or with NaN or Inf, or thresholds that are
    not one valid number per exit (`K` of them, within the criterion's
    range), make the call fail with `InvalidArgumentError` whose message
    names the input, what it must be and what it holds
    (`keras_eexit.inference.graph_checks`).

    Args:
        model: a built `MultiExitModel`.
        path: the SavedModel directory: new, empty, or an earlier
            SavedModel, which is replaced as a whole once the new one is
            complete (a failed export leaves it intact).
        thresholds, criterion, temperatures, policy: the default decision
            rule, as `predict_early_exit`.

    Returns:
        `path`.

    Raises:
        ValueError: if `path` is a directory holding other files than a
            SavedModel (they would be lost).
        OSError: if `path` cannot be written (one line naming it).

    Example:

    ```python
    export_saved_model(model, "served/1", policy=policy)
    served = tf.saved_model.load("served/1")
    out = served.signatures["serving_default"](inputs=tf.constant(x))
    out["exit_index"]
    ```
    """
    require_tensorflow("export_saved_model")
    import tensorflow as tf

    policy = as_policy(model.num_exits, thresholds, criterion, temperatures,
                       policy)
    graph = EarlyExitGraph(model, policy.criterion)
    checks = InputChecks(policy.criterion, model.num_exits,
                         model.input_shape_, model.input_dtype)
    module = tf.Module()
    module.model = model  # tracks the variables
    default_t = tf.constant(policy.threshold_array())
    temps = tf.constant(policy.temperature_array())
    costs = tf.constant(model.flops_per_exit(), tf.int64)
    spec = tf.TensorSpec((None,) + tuple(model.input_shape_),
                         model.input_dtype, name="inputs")

    def outputs(x, t=None):
        x, t = checks.assert_valid_call(x, t)
        out = graph(x, default_t if t is None else t, temps)
        return {PROBABILITIES: out[PROBABILITIES],
                EXIT_INDEX: out[EXIT_INDEX],
                "flops": tf.gather(costs, out[EXIT_INDEX])}

    @tf.function(input_signature=[spec])
    def serve(inputs):
        return outputs(inputs)

    # (Thresholds of any length reach the graph, which checks them: a
    # length fixed in the signature would be neither enforced nor checked.)
    @tf.function(input_signature=[
        spec, tf.TensorSpec((None,), tf.float32, name="thresholds")])
    def serve_with_thresholds(inputs, thresholds):
        return outputs(inputs, thresholds)

    module.serve = serve
    module.serve_with_thresholds = serve_with_thresholds
    path = _check_saved_model_path(path)
    with atomic_directory(path) as tmp:
        tf.saved_model.save(module, tmp, signatures={
            SIGNATURE: serve,
            SIGNATURE_WITH_THRESHOLDS: serve_with_thresholds,
        })
    return path


def _check_saved_model_path(path):
    """`path` as a string, refused if replacing it would lose other files."""
    path = os.fspath(path)
    if (os.path.isdir(path) and os.listdir(path)
            and not os.path.exists(os.path.join(path, "saved_model.pb"))):
        raise ValueError(
            f"Invalid value received for argument `path`. Expected a new or "
            f"empty directory, or an earlier SavedModel to replace. "
            f"Received: path={path!r}, a directory holding other files")
    return path
