"""`PowerSqrtDampingLoss`: the power-sqrt damping loss (eq. 4)."""

from keras import ops

from keras_eexit.api import register
from keras_eexit.losses.damping_functions import DEFAULT_DAMPING_LAMBDA
from keras_eexit.losses.damping_functions import as_list
from keras_eexit.losses.damping_functions import damping_components
from keras_eexit.losses.damping_functions import labels_per_classifier
from keras_eexit.losses.damping_loss import DampingLoss

_SQRT_EPSILON = 1e-12


@register
class PowerSqrtDampingLoss(DampingLoss):
    """Power-sqrt damping loss (eq. 4) over the K classifiers.

    Per sample: `Σ_k -log F^k[y] + λ · sqrt(Σ_k D_k²)` with
    `D_k = -log F^k[N+1]`; averaged over the batch. The square root couples
    the classifiers: the damping gradient on the true-class logit of
    classifier `k` is `λ · D_k / sqrt(Σ_j D_j²) · F^k[y]`, so classifiers
    that train better (small damping mass, large `D_k`) get the larger
    share. With one classifier it reduces to `DampingLoss`.

    The gradient is that of eq. 4 as written, which is the derivation of
    the paper's appendix B.2 (denominator `sqrt(Σ_j D_j²)`). The main text
    (after eq. 4) prints the denominator as `sqrt(Σ_j (D_j - 1)²)`, which
    is not the derivative of eq. 4; we follow B.2 (and eq. 4).

    `per_classifier` splits the damping part by shares
    `λ · D_k² / sqrt(Σ_j D_j²)` (they sum to the whole), which is how
    exit weights and dynamic weights apply per classifier and how the
    per-exit loss is logged. A `1e-12` under the square root keeps the
    gradient finite when every `D_k` is 0.

    Args:
        lam: λ >= 0, the weight of the damping term, or a preset name
            (see `DampingLoss`; default 0.005, the paper's CIFAR-100 value).
        num_classes: optional N (logits must then have N + 1 columns).
        reduction: Keras loss reduction; defaults to the batch mean.
        name: name of the loss.
        dtype: dtype of the loss computations.

    Example:

    ```python
    loss = PowerSqrtDampingLoss(lam=0.005)
    value = loss(labels, [logits_exit_1, logits_exit_2, logits_exit_3])
    ```

    References:
        - Diminishing Non-important Gradients for Training Dynamic
            Early-Exiting Networks (ICLR 2026 submission), eq. 4 and
            appendix B.2.
    """

    def __init__(self, lam=DEFAULT_DAMPING_LAMBDA, num_classes=None,
                 reduction="sum_over_batch_size",
                 name="power_sqrt_damping_loss", dtype=None):
        super().__init__(lam=lam, num_classes=num_classes,
                         reduction=reduction, name=name, dtype=dtype)

    def per_classifier(self, y_true, logits_list):
        logits_list = as_list(logits_list)
        self._check_logits(logits_list)
        labels = labels_per_classifier(y_true, len(logits_list))
        parts = [damping_components(label, logits)
                 for label, logits in zip(labels, logits_list)]
        norm = ops.sqrt(sum(ops.square(d) for _, d in parts) + _SQRT_EPSILON)
        return [ce + self.lam * ops.square(d) / norm for ce, d in parts]
