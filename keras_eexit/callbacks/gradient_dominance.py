"""Gradient dominance: which exit's gradient drives the shared backbone."""

import keras
import numpy as np
from keras import ops

from keras_eexit.compat_gradients import value_and_grad
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

SCOPES = ("model", "backbone")


def exit_gradient_cosines(model, x, y, scope="model", training=True):
    """Cosine between each exit's gradient and the total gradient.

    Kubaty et al. (§3.3, "gradient dominance"): with `g_k = ∂(w_k·CE_k)/∂θ`
    and `g = Σ_k g_k`, exit k dominates training when `cos(g_k, g)` is near
    1; the paper takes the gradients "across the entire model" and plots
    them "over course of the training" (Fig. 4). With `scope="model"`
    (default) `θ` is every currently trainable variable of the model,
    segments and heads (exit k's gradient is zero on the heads of the other
    exits and on the segments after it); with `scope="backbone"` only the
    segments'. `w_k` are the model's current `exit_weights` and `CE_k` the
    mean cross-entropy of exit k on the batch.

    With `training=True` (default) the gradients are the ones a training
    step applies: the model runs in training mode (BatchNorm normalises
    with the batch's statistics, dropout is on; frozen BatchNorm layers
    stay in inference mode, as in `fit`), through `stateless_call`, so the
    measurement leaves every variable as it was (BatchNorm moving
    statistics and dropout seeds included). `training=False` measures in
    inference mode (moving statistics, no dropout): the library's former
    measurement, which with BatchNorm is not the gradient the optimizer
    applies.

    Args:
        model: a `MultiExitModel`.
        x: a batch of inputs.
        y: its integer (or one-hot) labels.
        scope: `"model"` or `"backbone"`.
        training: measure training-mode (True) or inference-mode (False)
            gradients.

    Returns:
        A NumPy array `(num_exits,)` of cosines: NaN for an exit whose
        gradient is zero (weight 0, or nothing it reaches is trainable)
        and for every exit when nothing in the scope is trainable.

    Example:

    ```python
    exit_gradient_cosines(model, x[:64], y[:64])  # e.g. [0.41, 0.78, 0.93]
    ```
    """
    from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy

    check_choice("scope", scope, SCOPES)
    if not isinstance(training, bool):
        raise invalid_value("training", "True or False", training)
    if not model.built:  # creates the variables; changes no statistic
        model(x, training=False)
    parts = list(model.segments) + (list(model.heads) if scope == "model"
                                    else [])
    in_scope = {id(v) for part in parts for v in part.trainable_weights}
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    positions = [i for i, v in enumerate(model.trainable_variables)
                 if id(v) in in_scope]
    if not positions:  # nothing trainable in the scope
        return np.full(len(model.exit_names), np.nan)

    def weighted_losses(values):
        full = list(trainable)
        for position, value in zip(positions, values):
            full[position] = value
        # The updated non-trainable values (moving statistics) are dropped.
        out, _ = model.stateless_call(full, non_trainable, x,
                                      training=training)
        return [
            ops.cast(model.exit_weights[k], "float32") * ops.mean(
                ops.cast(per_sample_crossentropy(y, out[name]), "float32"))
            for k, name in enumerate(model.exit_names)
        ]

    _, grads = value_and_grad(weighted_losses,
                              [trainable[i] for i in positions])
    per_exit = np.stack([
        np.concatenate([np.asarray(g, np.float32).reshape(-1)
                        for g in per_loss]) for per_loss in grads
    ]).astype(np.float64)
    total = per_exit.sum(0)
    norms = np.linalg.norm(per_exit, axis=1) * np.linalg.norm(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, per_exit @ total / norms, np.nan)


class GradientDominance(keras.callbacks.Callback):
    """Logs `exit_gradient_cosines` on a fixed batch every `every` steps.

    The measurement takes its own gradients (`compat_gradients.
    value_and_grad`: a `tf.GradientTape` on TensorFlow, `jax.vjp` on JAX)
    on the held batch `(x, y)`, outside the compiled training step, in
    training mode by default (the gradients the optimizer applies)
    through `stateless_call`, so training is unchanged (no BatchNorm
    statistic or dropout seed moves).
    At the end of each epoch the latest cosines are written to the logs as
    `grad_cos_exit_1`, ... (so they reach `History`).

    Args:
        x: a fixed batch of inputs.
        y: its labels.
        every: steps between measurements (the first step is measured).
        scope: `"model"` (every trainable variable, the paper's
            definition) or `"backbone"` (segments only); see
            `exit_gradient_cosines`.
        training: training-mode gradients (default) or inference-mode
            ones (`False`); see `exit_gradient_cosines`.

    Attributes:
        history: list of `(global step, cosines array)`.
        steps: `(M,)` int array of the measured steps.
        cosines: `(M, num_exits)` array of the measurements.

    Example:

    ```python
    dominance = GradientDominance(x[:64], y[:64], every=50)
    model.fit(x, y, callbacks=[dominance])
    gradient_dominance_plot(dominance, model.exit_names, "dominance.png")
    ```
    """

    def __init__(self, x, y, every=100, scope="model", training=True):
        super().__init__()
        self.x = x
        self.y = y
        self.every = check_positive_int("every", every)
        self.scope = check_choice("scope", scope, SCOPES)
        if not isinstance(training, bool):
            raise invalid_value("training", "True or False", training)
        self.training = training
        self.history = []
        self._step = 0

    @property
    def steps(self):
        return np.array([step for step, _ in self.history], dtype=np.int64)

    @property
    def cosines(self):
        if not self.history:
            return np.zeros((0, 0))
        return np.stack([values for _, values in self.history])

    def to_dict(self):
        """`{"steps": [...], "cosines": [[...], ...]}`, JSON-able."""
        return {"steps": self.steps.tolist(),
                "cosines": self.cosines.tolist()}

    def on_train_batch_end(self, batch, logs=None):
        if self._step % self.every == 0:
            self.history.append(
                (self._step, exit_gradient_cosines(
                    self.model, self.x, self.y, self.scope, self.training)))
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.history and logs is not None:
            for k, value in enumerate(self.history[-1][1]):
                logs[f"grad_cos_exit_{k + 1}"] = float(value)
