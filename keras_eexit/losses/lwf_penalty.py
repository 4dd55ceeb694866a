"""`LwFPenalty`: the Learning-without-Forgetting term of Zniber et al."""

from keras import ops

from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.utils.validation import check_number


def kl_to_reference(logits, reference_logits):
    """Per-sample `KL(softmax(logits) ‖ softmax(reference))`.

    Current ‖ reference, the order of Zniber et al.'s eq. 4; the reference
    is a constant.

    Args:
        logits: `(batch, classes)` of the model being trained.
        reference_logits: `(batch, classes)` of the frozen reference.

    Returns:
        A float32 tensor of shape `(batch,)`.
    """
    log_p = ops.log_softmax(ops.cast(logits, "float32"), -1)
    log_q = ops.log_softmax(
        ops.stop_gradient(ops.cast(reference_logits, "float32")), -1)
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


class LwFPenalty(ExitTerm):
    """Objective term `ρ · Σ_{ν<μ} KL(ŷ_ν ‖ ŷ*_ν)` (Zniber et al., eq. 4).

    `ŷ_ν` is exit ν's current softmax and `ŷ*_ν` that of the frozen
    reference snapshot taken when the stage began (current ‖ reference, as
    the paper writes it), averaged over the batch. Gradients reach the
    backbone and the earlier heads.

    Args:
        rho: ρ >= 0.
        exits: exit NUMBERS (1..K) of the exits ν < μ.

    Example:

    ```python
    LwFPenalty(rho=0.7, exits=[1, 2])  # at stage μ = 3
    ```
    """

    name = "lwf"

    def __init__(self, rho, exits):
        super().__init__(exits=exits, weight=check_number("rho", rho, 0.0))

    @property
    def rho(self):
        """ρ, the strength of the term."""
        return self.weight

    def per_sample(self, model, x, y, y_pred, positions):
        reference = model.regime_state.teacher_outputs(x)
        names = model.exit_names
        return [kl_to_reference(y_pred[names[k]], reference[names[k]])
                for k in positions]
