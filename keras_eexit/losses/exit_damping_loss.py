"""`ExitDampingLoss`: a damping loss over all exits, as an objective term."""

from keras_eexit.losses.damping_functions import check_alpha
from keras_eexit.losses.damping_functions import check_damping_heads
from keras_eexit.losses.damping_functions import dynamic_weights
from keras_eexit.losses.damping_loss import DampingLoss
from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.losses.power_sqrt_damping_loss import PowerSqrtDampingLoss
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import invalid_value

DAMPING_LOSSES = {"damping": DampingLoss, "power_sqrt": PowerSqrtDampingLoss}
"""Damping losses by the name `Joint(loss=...)` takes."""


class ExitDampingLoss(ExitTerm):
    """Objective term: a damping loss over all exits, replacing cross-entropy.

    `Σ_k w_k · mean_i v_ik · L_ik`, with `L_ik` the classifier's part of the
    damping or power-sqrt loss (`loss.per_classifier`), `w_k` the exit
    weights (`model.exit_weights`) and `v_ik` the dynamic weights of the
    paper's sec. 3.5 when `alpha` is set (else 1). It takes the place of
    the default cross-entropy term, and its per-exit values (the mean
    `L_ik` of each exit, before exit and dynamic weights) are logged as
    `exit_k_loss`. Every head must have a damping unit.

    Args:
        loss: a `DampingLoss` or `PowerSqrtDampingLoss`.
        alpha: `None` (no dynamic weighting) or the α of `dynamic_weights`.
        dynamic_gradient: let gradients flow through the dynamic weights
            (the paper's "with gradient" ablation, Table 5).

    Example:

    ```python
    Phase("joint", terms=[ExitDampingLoss(PowerSqrtDampingLoss(0.005),
                                          alpha=0.8)])
    ```
    """

    name = "damping"
    replaces_cross_entropy = True

    def __init__(self, loss, alpha=None, dynamic_gradient=False):
        super().__init__()
        if not isinstance(loss, DampingLoss):
            raise invalid_value(
                "loss", "a DampingLoss or PowerSqrtDampingLoss", loss)
        self.loss = loss
        self.alpha = None if alpha is None else check_alpha(alpha)
        self.dynamic_gradient = check_bool("dynamic_gradient",
                                           dynamic_gradient)

    def check_model(self, model):
        """Raises a clear error unless every head has a damping unit."""
        check_damping_heads(model, f"{type(self.loss).__name__}")

    def per_sample(self, model, x, y, y_pred, positions):
        names = [model.exit_names[k] for k in positions]
        return self.loss.per_classifier([y[n] for n in names],
                                        [y_pred[n] for n in names])

    def sample_factors(self, model, y_pred, positions):
        if self.alpha is None:
            return None
        return dynamic_weights(
            [y_pred[model.exit_names[k]] for k in positions], self.alpha,
            stop_gradient=not self.dynamic_gradient)
