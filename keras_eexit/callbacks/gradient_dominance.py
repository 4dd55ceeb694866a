"""Gradient dominance: which exit's gradient drives the shared backbone."""

import keras
import numpy as np
import tensorflow as tf

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int

SCOPES = ("model", "backbone")


def exit_gradient_cosines(model, x, y, scope="model"):
    """Cosine between each exit's gradient and the total gradient.

    Kubaty et al. (§3.3, "gradient dominance"): with `g_k = ∂(w_k·CE_k)/∂θ`
    and `g = Σ_k g_k`, exit k dominates training when `cos(g_k, g)` is near
    1; the paper takes the gradients "across the entire model". With
    `scope="model"` (default) `θ` is every currently trainable variable of
    the model, segments and heads (exit k's gradient is zero on the heads
    of the other exits and on the segments after it); with
    `scope="backbone"` only the segments' (the library's former
    measurement). `w_k` are the model's current `exit_weights`, `CE_k` the
    mean cross-entropy of exit k on the batch, and the model runs in
    inference mode (no dropout, BatchNorm statistics left alone) under its
    own `tf.GradientTape`, apart from the training step.

    Args:
        model: a `MultiExitModel`.
        x: a batch of inputs.
        y: its integer (or one-hot) labels.
        scope: `"model"` or `"backbone"`.

    Returns:
        A NumPy array `(num_exits,)` of cosines: NaN for an exit whose
        gradient is zero (weight 0, or nothing it reaches is trainable)
        and for every exit when nothing in the scope is trainable.
    """
    from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy

    check_choice("scope", scope, SCOPES)
    parts = list(model.segments) + (list(model.heads) if scope == "model"
                                    else [])
    variables = [v.value for part in parts for v in part.trainable_weights]
    if not variables:  # nothing trainable in the scope
        return np.full(len(model.exit_names), np.nan)
    with tf.GradientTape(persistent=True) as tape:
        out = model(x, training=False)
        losses = [
            tf.cast(model.exit_weights[k], tf.float32) * tf.reduce_mean(
                tf.cast(per_sample_crossentropy(y, out[name]), tf.float32))
            for k, name in enumerate(model.exit_names)
        ]
    flat = []
    for loss in losses:
        grads = tape.gradient(
            loss, variables,
            unconnected_gradients=tf.UnconnectedGradients.ZERO)
        flat.append(tf.concat(
            [tf.reshape(tf.cast(g, tf.float32), (-1,)) for g in grads], 0))
    del tape
    per_exit = tf.stack(flat).numpy().astype(np.float64)
    total = per_exit.sum(0)
    norms = np.linalg.norm(per_exit, axis=1) * np.linalg.norm(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, per_exit @ total / norms, np.nan)


class GradientDominance(keras.callbacks.Callback):
    """Logs `exit_gradient_cosines` on a fixed batch every `every` steps.

    The measurement uses its own `tf.GradientTape` on the held batch
    `(x, y)`, outside the compiled training step, so training is unchanged.
    At the end of each epoch the latest cosines are written to the logs as
    `grad_cos_exit_1`, ... (so they reach `History`).

    Args:
        x: a fixed batch of inputs.
        y: its labels.
        every: steps between measurements (the first step is measured).
        scope: `"model"` (every trainable variable, the paper's
            definition) or `"backbone"` (segments only); see
            `exit_gradient_cosines`.

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

    def __init__(self, x, y, every=100, scope="model"):
        super().__init__()
        self.x = x
        self.y = y
        self.every = check_positive_int("every", every)
        self.scope = check_choice("scope", scope, SCOPES)
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
                (self._step, exit_gradient_cosines(self.model, self.x,
                                                   self.y, self.scope)))
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.history and logs is not None:
            for k, value in enumerate(self.history[-1][1]):
                logs[f"grad_cos_exit_{k + 1}"] = float(value)
