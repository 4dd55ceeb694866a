"""`DampingLoss`: the damping loss (eq. 2) as a Keras loss."""

import keras

from keras_eexit.api import register
from keras_eexit.losses.damping_functions import DEFAULT_DAMPING_LAMBDA
from keras_eexit.losses.damping_functions import as_list
from keras_eexit.losses.damping_functions import check_lam
from keras_eexit.losses.damping_functions import damping_components
from keras_eexit.losses.damping_functions import labels_per_classifier


@register
class DampingLoss(keras.losses.Loss):
    """Damping loss (eq. 2), summed over classifiers, averaged over a batch.

    For each classifier: `-log F[y] + λ · (-log F[N+1])`, `F` the softmax
    over the N class logits and the damping unit (last). Its gradient on
    the logits is `(1 + λ) F[y] - 1` on the true class and
    `(1 + λ) F[N+1] - λ` on the damping unit.

    Call it as `loss(y_true, logits_list)` with the K exits' logits (a
    single logits tensor is K = 1, so `model.compile(loss=DampingLoss(λ))`
    applies eq. 2 to every exit); it returns the per-sample sum over
    classifiers, reduced over the batch (mean by default). For multi-exit
    training prefer `keras_eexit.regimes.Joint(loss="damping", lam=λ)`,
    which also applies exit weights and dynamic weights.

    Args:
        lam: λ >= 0, the weight of the damping term, or a preset name of
            `DAMPING_LAMBDAS` (`"cifar100"`: 0.005, the default;
            `"cifar10"`: 0.075; `"imagenet"`: 0.01 — the paper's sec. 5).
            λ = 0 is plain cross-entropy with the softmax over N + 1 units.
        num_classes: optional N; when given, logits must have N + 1
            columns (a clear error for heads without the damping unit).
        reduction: Keras loss reduction; defaults to the batch mean.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Example:

    ```python
    loss = DampingLoss(lam="cifar10")  # 0.075
    value = loss(labels, [logits_exit_1, logits_exit_2])  # scalar
    ```

    References:
        - Diminishing Non-important Gradients for Training Dynamic
            Early-Exiting Networks (ICLR 2026 submission,
            https://openreview.net/forum?id=0L54sroHRw), eq. 2.
    """

    def __init__(self, lam=DEFAULT_DAMPING_LAMBDA, num_classes=None,
                 reduction="sum_over_batch_size", name="damping_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lam = check_lam(lam)
        if num_classes is not None:
            from keras_eexit.utils.validation import check_num_classes

            num_classes = check_num_classes(num_classes)
        self.num_classes = num_classes

    def _check_logits(self, logits_list):
        if self.num_classes is None:
            return
        for logits in logits_list:
            width = logits.shape[-1]
            if width is not None and width != self.num_classes + 1:
                raise ValueError(
                    f"{type(self).__name__} expects logits with num_classes "
                    f"+ 1 = {self.num_classes + 1} columns ({self.num_classes}"
                    f" classes and the damping unit); received {width}. "
                    "Heads without the damping unit cannot use a damping "
                    "loss: build them with damping=True."
                )

    def per_classifier(self, y_true, logits_list):
        """Per-sample loss of each classifier.

        Args:
            y_true: one label tensor (shared by the classifiers) or a list
                with one per classifier.
            logits_list: the K classifiers' logits (or one tensor).

        Returns:
            A list of K float32 tensors `(batch,)` whose sum over the list
            is the per-sample loss.
        """
        logits_list = as_list(logits_list)
        self._check_logits(logits_list)
        labels = labels_per_classifier(y_true, len(logits_list))
        values = []
        for label, logits in zip(labels, logits_list):
            ce, d = damping_components(label, logits)
            values.append(ce + self.lam * d)
        return values

    def call(self, y_true, y_pred):
        return sum(self.per_classifier(y_true, y_pred))

    def get_config(self):
        config = super().get_config()
        config.update({"lam": self.lam, "num_classes": self.num_classes})
        return config
