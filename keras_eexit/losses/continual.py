"""Objective terms of sequential training: EWC and LwF (Zniber et al.)."""

from keras import ops

from keras_eexit.utils.validation import invalid_value


def check_strength(argument, value):
    """Checks a regularisation strength (a number >= 0) and returns it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        value < 0
    ):
        raise invalid_value(argument, "a number >= 0", value)
    return float(value)


class EWCPenalty:
    """Objective term `λ · Σ_k F_k (θ_k − θ*_k)²` (Zniber et al., eq. 3).

    `F` is the Fisher diagonal accumulated over the finished stages (online
    EWC) and `θ*` the parameter values at the end of the previous stage;
    both live in the regime's state (`model.regime_state`), where
    `Sequential(regularizer="ewc")` puts them after each stage.

    Args:
        lam: λ >= 0.

    Example:

    ```python
    Phase("stage_2", 5, train_segments=[1, 2], train_heads=[2],
          terms=(EWCPenalty(100.0),))
    ```
    """

    name = "ewc"

    def __init__(self, lam):
        self.lam = check_strength("lam", lam)

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(λ·R_EWC, {})`."""
        state = model.regime_state
        total = 0.0
        for var, fisher, anchor in zip(state.protected, state.fisher,
                                       state.anchors):
            diff = ops.cast(var, "float32") - anchor
            total = total + ops.sum(fisher * diff * diff)
        return self.lam * total, {}


class LwFPenalty:
    """Objective term `ρ · Σ_{ν<μ} KL(ŷ_ν ‖ ŷ*_ν)` (Zniber et al., eq. 4).

    `ŷ_ν` is exit ν's current softmax and `ŷ*_ν` that of the frozen
    reference snapshot taken when the stage began (current ‖ reference, as
    the paper writes it), averaged over the batch. Gradients reach the
    backbone and the earlier heads.

    Memory: the reference costs one copy of the model's weights and one
    extra forward pass per step. (Storing per-sample reference outputs
    instead — possible when the input pipeline is deterministic — would cost
    samples × exits × classes floats; not implemented.)

    Args:
        rho: ρ >= 0.
        exits: 0-based indices of the exits ν < μ.
    """

    name = "lwf"

    def __init__(self, rho, exits):
        self.rho = check_strength("rho", rho)
        self.exits = list(exits)

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(ρ·R_LwF, {})`."""
        reference = model.regime_state.teacher_outputs(x)
        total = 0.0
        for k in self.exits:
            name = model.exit_names[k]
            log_p = ops.log_softmax(ops.cast(y_pred[name], "float32"), -1)
            log_q = ops.log_softmax(
                ops.stop_gradient(ops.cast(reference[name], "float32")), -1)
            kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
            total = total + ops.mean(kl)
        return self.rho * total, {}
