"""`SelectiveCrossEntropy`: threshold selection and label smoothing."""

from keras import ops

from keras_eexit.losses.damping_functions import check_plain_heads
from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.losses.labels import dense_labels
from keras_eexit.utils.validation import check_number


class SelectiveCrossEntropy(ExitTerm):
    """Objective term: cross-entropy with gradient selection or smoothing.

    The plain-head baselines the damping paper compares with (its
    "threshold" gradient selection and label smoothing, appendix C.5):
    `Σ_k w_k · mean_i m_ik · CE(ỹ_i, logits_ik)` where

    * threshold gradient selection: `m_ik = 0` when the softmax of the true
      class exceeds `threshold` (the sample's loss is dropped, so it sends
      no gradient), else 1; the mask is a constant and the mean still runs
      over the whole batch;
    * label smoothing: `ỹ = (1 - ε) · one_hot(y) + ε / N`.

    It replaces the default cross-entropy term; per-exit values (the masked
    means, before exit weights) are logged as `exit_k_loss`. Heads must be
    plain (N logits). With soft labels the "true-class softmax" is
    `exp(Σ_c y_c log F[c])`.

    Args:
        threshold: `None` or τ in (0, 1].
        label_smoothing: ε in [0, 1).

    Example:

    ```python
    Phase("joint", terms=[SelectiveCrossEntropy(threshold=0.9)])
    ```
    """

    name = "selective_crossentropy"
    replaces_cross_entropy = True

    def __init__(self, threshold=None, label_smoothing=0.0):
        super().__init__()
        self.threshold = None if threshold is None else check_number(
            "threshold", threshold, 0.0, 1.0, low_open=True)
        self.label_smoothing = check_number(
            "label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)

    def check_model(self, model):
        """Raises a clear error if a head has a damping unit."""
        check_plain_heads(model, "Cross-entropy (threshold / label "
                                 "smoothing baselines)")

    def exit_loss(self, labels, logits):
        """Masked, smoothed cross-entropy per sample, shape `(batch,)`."""
        logits = ops.cast(logits, "float32")
        num_classes = logits.shape[-1]
        target = dense_labels(labels, num_classes)
        log_probs = ops.log_softmax(logits, axis=-1)
        smoothed = target
        if self.label_smoothing:
            smoothed = (target * (1.0 - self.label_smoothing)
                        + self.label_smoothing / num_classes)
        values = -ops.sum(smoothed * log_probs, axis=-1)
        if self.threshold is not None:
            true_prob = ops.exp(ops.sum(target * log_probs, axis=-1))
            keep = ops.cast(true_prob <= self.threshold, "float32")
            values = values * ops.stop_gradient(keep)
        return values

