"""Sequential training: exits added shallow to deep on a shared prefix."""

from keras_eexit.fisher.ewc_penalty import EWCPenalty
from keras_eexit.losses.lwf_penalty import LwFPenalty
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes._common import ones
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_non_negative_int
from keras_eexit.utils.validation import check_number


PRESETS = {
    # Zniber et al., "Balancing stability and plasticity in sequentially
    # trained early-exiting neural networks": tuned strengths.
    "resnet34": {"lam": 100.0, "rho": 0.7},
    "msdnet": {"lam": 1000.0, "rho": 0.2},
}


class Sequential(Regime):
    """Sequential training of the exits (Zniber et al.).

    An optional warm-up (stage 0) trains the backbone with the final exit
    only. Then exits are added one at a time, shallow to deep: at stage μ
    the segments 1..μ are trainable (a shared, fully unfrozen prefix) and
    deeper segments are frozen.

    - `objective="cumulative"` (default): heads 1..μ train on the losses of
      exits 1..μ — the "separate" baseline of the paper.
    - `objective="current"`: head μ trains on exit μ's loss — the paper's
      method, with a regulariser:
      `L = CE_μ + λ·R_EWC + ρ·R_LwF`.

    Regularisers (`regularizer="ewc"`, `"lwf"`, or `("ewc", "lwf")` for both,
    an extension):

    - EWC (eq. 2-3): after stage ν (the warm-up counts as the final exit's
      stage) a Fisher pass — one extra epoch in which nothing trains —
      averages the exact per-sample squared gradients of
      `log ŷ_ν(true class)` over segments 1..ν; Fishers accumulate over
      stages (online EWC) and the anchors θ* are the weights at the end of
      the previous stage. Stage μ adds `λ·Σ F (θ − θ*)²`.
    - LwF (eq. 4): when stage μ starts, a frozen snapshot of the model is
      taken; stage μ adds `ρ·Σ_{ν<μ} KL(ŷ_ν ‖ ŷ*_ν)` and heads 1..μ-1 train
      too, so the term's gradients reach them.

    With a warm-up, the stages cover the internal exits 1..K-1 (the final
    head stays frozen after the warm-up); without it they cover 1..K.

    Args:
        epochs_per_exit: epochs of each stage.
        warmup_epochs: epochs of stage 0 (0 = no warm-up).
        objective: `"cumulative"` or `"current"`.
        regularizer: `None`, `"ewc"`, `"lwf"` or both as a tuple.
        lam: λ, the EWC strength (see `PRESETS`).
        rho: ρ, the LwF strength.
        fisher_samples: samples of each Fisher pass (`None`: one epoch).
        learning_rate: optional learning rate of every stage.
        verbose: print each phase as it starts.

    Example:

    ```python
    regime = Sequential(epochs_per_exit=3, warmup_epochs=5,
                        objective="current", regularizer="ewc",
                        **PRESETS["resnet34"])
    model.fit(ds, epochs=regime.epochs_for(model), callbacks=[regime])
    ```
    """

    def __init__(self, epochs_per_exit, warmup_epochs=0,
                 objective="cumulative", regularizer=None, lam=100.0,
                 rho=0.7, fisher_samples=None, learning_rate=None,
                 verbose=True):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        check_non_negative_int("warmup_epochs", warmup_epochs)
        check_choice("objective", objective, ("cumulative", "current"))
        chosen = _regularizers(regularizer)
        ewc = EWCPenalty(lam) if "ewc" in chosen else None
        rho = check_number("rho", rho, 0.0)
        if fisher_samples is not None:
            epochs_arg("fisher_samples", fisher_samples)
        self.objective_kind = objective
        self.regularizer = regularizer

        def phases(num_exits):
            def fisher(exit_number):
                return Phase(f"fisher_{exit_number}", 1,
                             train_segments="none", train_heads="none",
                             weights="uniform",  # nothing trains
                             fisher_exit=exit_number,
                             fisher_samples=fisher_samples)

            result = []
            last = num_exits
            if warmup_epochs:
                result.append(backbone_phase(warmup_epochs, num_exits,
                                             learning_rate))
                last = num_exits - 1
                if ewc:
                    result.append(fisher(num_exits))
            for mu in range(1, last + 1):
                prefix = list(range(1, mu + 1))
                if objective == "cumulative":
                    heads, weights = prefix, ones(prefix, num_exits)
                else:
                    heads, weights = [mu], one_hot(mu, num_exits)
                terms = []
                if ewc and (mu > 1 or warmup_epochs):
                    terms.append(ewc)
                lwf = "lwf" in chosen and mu > 1
                if lwf:
                    terms.append(LwFPenalty(rho, range(1, mu)))
                    heads = prefix
                result.append(Phase(
                    f"stage_{mu}", epochs_per_exit, train_segments=prefix,
                    train_heads=heads, weights=weights, terms=tuple(terms),
                    learning_rate=learning_rate, snapshot_teacher=lwf))
                if ewc and mu < last:
                    result.append(fisher(mu))
            return result

        super().__init__(phases, verbose=verbose)

    def check_model(self, model):
        from keras_eexit.models.unshared import UnsharedStage

        if "ewc" in _regularizers(self.regularizer) and all(
            isinstance(s, UnsharedStage) for s in model.segments
        ):
            raise ValueError(
                "EWC protects the parameters that exits share, but this "
                "model's exits share none (unshared prefixes): use a "
                "shared chain, or no regulariser."
            )


def _regularizers(regularizer):
    if regularizer is None:
        return set()
    names = {regularizer} if isinstance(regularizer, str) else set(
        regularizer)
    for name in names:
        check_choice("regularizer", name, ("ewc", "lwf"))
    return names
