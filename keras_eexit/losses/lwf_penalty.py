"""`LwFPenalty`: the Learning-without-Forgetting term of Zniber et al."""

from keras import ops

from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.utils.validation import check_choice
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

    `ŷ_ν` is exit ν's current softmax and `ŷ*_ν` its reference, "the
    output distribution obtained with the training of IC ν": with
    `reference="exit"` (the paper's) the frozen copy of exit ν the regime
    kept when exit ν's stage ended (`Phase(reference_exit=ν)`); with
    `reference="stage_start"` (an extension) exit ν of a snapshot of the
    whole model taken when the current stage began
    (`Phase(snapshot_teacher=True)`). KL(current ‖ reference), as the paper
    writes it, averaged over the batch; gradients reach the backbone and
    the earlier heads.

    Memory: a reference of exit ν costs a copy of segments 1..ν and heads
    1..ν, and one forward pass of it per step.

    Args:
        rho: ρ >= 0.
        exits: exit NUMBERS (1..K) of the exits ν < μ.
        reference: `"exit"` or `"stage_start"`.

    Example:

    ```python
    LwFPenalty(rho=0.7, exits=[1, 2])  # at stage μ = 3
    ```
    """

    name = "lwf"

    def __init__(self, rho, exits, reference="exit"):
        super().__init__(exits=exits, weight=check_number("rho", rho, 0.0))
        self.reference = check_choice("reference", reference,
                                      ("exit", "stage_start"))

    @property
    def rho(self):
        """ρ, the strength of the term."""
        return self.weight

    def per_sample(self, model, x, y, y_pred, positions):
        state = model.regime_state
        names = model.exit_names
        if self.reference == "stage_start":
            snapshot = state.teacher_outputs(x)
            references = [snapshot[names[k]] for k in positions]
        else:
            references = [state.reference_outputs(k + 1, x)
                          for k in positions]
        return [kl_to_reference(y_pred[names[k]], reference)
                for k, reference in zip(positions, references)]
