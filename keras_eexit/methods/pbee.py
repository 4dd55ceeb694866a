"""PBEE / PABEE (patience-based early exit): its training recipe."""

from keras_eexit.methods._common import check_model
from keras_eexit.methods.depth_weights import depth_weighted_phases
from keras_eexit.methods.method_regime import MethodRegime
from keras_eexit.utils.validation import check_choice

WEIGHTINGS = ("pabee", "none")


def pbee(model):
    """A multi-exit model for PABEE: the model itself (plain exits).

    PABEE (Zhou et al., 2020) changes how exits are trained (`pbee_regime`)
    and how a sample leaves (the `"patience"` criterion of
    `keras_eexit.criteria` / `keras_eexit.evaluation.sweep`: the first exit
    whose prediction equals the previous `t` exits' predictions), not the
    network: its exits are ordinary heads.

    Args:
        model: a built `MultiExitModel` with at least 2 exits (damping
            heads allowed: the patience rule reads their class units).

    Returns:
        `model`.
    """
    check_model(model, "PBEE", damping=True)
    return model


def pbee_regime(regime, weighting="pabee"):
    """A regime training PABEE's exits.

    Args:
        regime: any `keras_eexit.regimes.Regime`.
        weighting: `"pabee"`: every phase's exit weights multiplied by the
            exit number, same total (`depth_weighted`): under `Joint()`
            the paper's `Σ_k k·L_k / Σ_k k` (authors' code,
            JetRunner/PABEE). `"none"`: the regime's own weights, as Kubaty
            et al.'s benchmark trains its PBEE (an SDN model evaluated with
            the patience criterion).

    Returns:
        A `MethodRegime` (`regime` itself for `weighting="none"`).

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[pbee_regime(Joint())])
    threshold_sweep(collect(model, test), criterion="patience")
    ```

    References:
        - Zhou et al., 2020. BERT Loses Patience: Fast and Robust Inference
          with Early Exit. NeurIPS 2020.
    """
    check_choice("weighting", weighting, WEIGHTINGS)
    if weighting == "none":
        return regime
    return MethodRegime(regime, depth_weighted_phases, "pbee")
