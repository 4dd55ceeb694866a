"""Sequential training of the exits with EWC / LwF (Zniber et al.)."""

from keras_eexit.fisher.ewc_penalty import EWCPenalty
from keras_eexit.losses.lwf_penalty import LwFPenalty
from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import one_hot
from keras_eexit.regimes._common import ones
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.regimes.two_stage import backbone_phase
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_non_negative_int
from keras_eexit.utils.validation import check_number


PRESETS = {
    # Zniber et al., sec. 3.1: "we set λ = 100 and ρ = 0.7 for ResNet34,
    # and λ = 1000 and ρ = 0.2 for MSDNet".
    "resnet34": {"lam": 100.0, "rho": 0.7},
    "msdnet": {"lam": 1000.0, "rho": 0.2},
}


class SequentialRegime(Regime):
    """Sequential training of the exits (Zniber et al.).

    Registered as `"sequential"`. The class was `regimes.Sequential`, which
    shadowed `keras.Sequential` (a model) wherever both are imported;
    `regimes.Sequential` stays a deprecated alias for one release.

    The paper's procedure (sec. 2 and 3.1):

    1. Warm-up (optional, `warmup_epochs`; the paper's "first stage"): the
       backbone trains with the final exit only. Its Table 2 ablates it:
       change `warmup_epochs` alone (`0` = no warm-up).
    2. One stage per exit μ = 1..K, shallow to deep, the final exit
       included: Θ_1..Θ_μ (segments 1..μ) and IC μ train on
       `L_CE^(μ) + s·λ·R_EWC^(μ) + (1−s)·ρ·R_LwF^(μ)` (eq. 1); deeper
       segments and heads are frozen ("The final block (Θ_4) and its
       corresponding classifier remain frozen throughout this stage").

    Regularisers (eq. 1's `s` picks one; both together is an extension):

    - EWC (`regularizer="ewc"`, eq. 2-3): after stage ν < K a Fisher pass
      (one epoch in which nothing trains) measures exit ν's empirical
      Fisher `F^(ν)` over Θ_1..Θ_ν (exact per-sample squared gradients of
      `log ŷ_ν(true class)`, eq. 3, on the training data at the weights
      that end stage ν) and sets the anchors θ* to those weights. Stage μ
      adds `λ · Σ_{θ_k ∈ Θ_1..Θ_{μ-1}} (Σ_{ν<μ} F_k^(ν)) (θ_k − θ*_k)²`
      with θ* "the value of θ_k after training up to exit μ − 1" (online
      EWC, Schwarz et al.). Stage 1 has no penalty (no exit was trained
      before it). The warm-up is not an exit stage and adds no Fisher
      (`warmup_fisher=True`, an extension, also anchors every segment to
      the warm-up's final-exit Fisher from stage 1 on).
    - LwF (`regularizer="lwf"`, eq. 4): stage μ adds
      `ρ · Σ_{ν<μ} KL(ŷ_ν ‖ ŷ*_ν)` where ŷ*_ν is exit ν's output "obtained
      with the training of IC ν": a frozen copy of exit ν (segments 1..ν,
      head ν) is kept when stage ν ends (`Phase(reference_exit=ν)`). Its
      gradients reach the backbone and the earlier heads, so heads 1..μ
      train at stage μ ("the LwF loss enables gradient flow through both
      the shared backbone and the classifier heads of earlier exits").

    Objective: `objective="current"` (`L_CE^(μ)`, eq. 1 — the paper's, the
    default with a regulariser) or `"cumulative"` (heads 1..μ on
    `Σ_{ν≤μ} L_CE^(ν)`, the paper's "separate training" baseline, the
    default without one; with a regulariser it is an explicit choice).

    Length of a stage: `epochs_per_exit` epochs, or with `patience` early
    stopping on the validation loss of the stage's exit with the best
    weights restored (`epochs_per_exit` is then the maximum; the paper
    uses early stopping with patience 50, sec. 3.1). Each stage starts
    with a fresh optimizer state (`reset_optimizer`).

    Set-up of the paper (sec. 3.1): CIFAR-100; ResNet-34 with 8 ICs (batch
    128, learning rate 5e-4, no weight decay) and MSDNet with 7 blocks
    (batch 512, 1e-3); CutMix and Mixup; λ = 100, ρ = 0.7 (ResNet-34) and
    λ = 1000, ρ = 0.2 (MSDNet) (`PRESETS`).

    Args:
        epochs_per_exit: epochs of each stage (maximum with `patience`).
        warmup_epochs: epochs of the warm-up (0 = none).
        objective: `None` (the default above), `"current"` or
            `"cumulative"`.
        regularizer: `None`, `"ewc"`, `"lwf"` or both as a tuple.
        lam: λ, the EWC strength (see `PRESETS`).
        rho: ρ, the LwF strength.
        fisher_samples: samples of each Fisher pass (`None`: one epoch).
        learning_rate: optional learning rate of every stage.
        warmup_learning_rate: optional learning rate of the warm-up.
        patience: `None` (fixed epochs) or the early-stopping patience of
            each stage (and of the warm-up, on the final exit).
        metric: the validation metric early stopping watches (`"loss"`).
        warmup_fisher: the extension above (EWC only).
        lwf_reference: `"exit"` (the paper's ŷ*_ν, above) or
            `"stage_start"` (an extension: exit ν of a snapshot taken when
            stage μ starts, i.e. after stage μ − 1).
        reset_optimizer: a fresh optimizer state at every stage.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.

    Example:

    ```python
    regime = SequentialRegime(epochs_per_exit=3, warmup_epochs=5,
                              regularizer="ewc", **PRESETS["resnet34"])
    model.fit(ds, epochs=regime.epochs_for(model), callbacks=[regime])
    ```

    References:
        - Zniber, Karrakchou, Ghogho: Balancing Stability and Plasticity
            in Sequentially Trained Early-Exiting Neural Networks
            (arXiv 2605.05358), eq. 1-4, sec. 3.1.
    """

    def __init__(self, epochs_per_exit, warmup_epochs=0, objective=None,
                 regularizer=None, lam=100.0, rho=0.7, fisher_samples=None,
                 learning_rate=None, warmup_learning_rate=None,
                 patience=None, metric="loss", warmup_fisher=False,
                 lwf_reference="exit", reset_optimizer=True, verbose="auto"):
        epochs_arg("epochs_per_exit", epochs_per_exit)
        check_non_negative_int("warmup_epochs", warmup_epochs)
        chosen = _regularizers(regularizer)
        if objective is None:
            objective = "current" if chosen else "cumulative"
        check_choice("objective", objective, ("cumulative", "current"))
        ewc = EWCPenalty(lam) if "ewc" in chosen else None
        rho = check_number("rho", rho, 0.0)
        if fisher_samples is not None:
            epochs_arg("fisher_samples", fisher_samples)
        patience, metric = convergence_args(patience, metric)
        check_bool("warmup_fisher", warmup_fisher)
        check_choice("lwf_reference", lwf_reference, ("exit", "stage_start"))
        check_bool("reset_optimizer", reset_optimizer)
        if warmup_fisher and not (ewc and warmup_epochs):
            raise ValueError(
                "Invalid value received for argument `warmup_fisher`. "
                "Expected False unless regularizer includes 'ewc' and "
                "warmup_epochs > 0. Received: warmup_fisher=True")
        self.objective_kind = objective
        self.regularizer = regularizer

        def fisher(exit_number):
            return Phase(f"fisher_{exit_number}", 1,
                         train_segments="none", train_heads="none",
                         weights="uniform",  # nothing trains
                         fisher_exit=exit_number,
                         fisher_samples=fisher_samples)

        def phases(num_exits):
            result = []
            if warmup_epochs:
                result.append(backbone_phase(
                    warmup_epochs, num_exits, warmup_learning_rate,
                    patience, metric))
                if warmup_fisher:
                    result.append(fisher(num_exits))
            for mu in range(1, num_exits + 1):
                prefix = list(range(1, mu + 1))
                if objective == "cumulative":
                    heads, weights = prefix, ones(prefix, num_exits)
                else:
                    heads, weights = [mu], one_hot(mu, num_exits)
                terms = []
                if ewc and (mu > 1 or warmup_fisher):
                    terms.append(ewc)
                lwf = "lwf" in chosen
                if lwf and mu > 1:
                    terms.append(LwFPenalty(rho, range(1, mu),
                                            reference=lwf_reference))
                    heads = prefix
                keep = lwf and lwf_reference == "exit" and mu < num_exits
                stage = Phase(
                    f"stage_{mu}", epochs_per_exit, train_segments=prefix,
                    train_heads=heads, weights=weights, terms=tuple(terms),
                    learning_rate=learning_rate,
                    reference_exit=mu if keep else None,
                    snapshot_teacher=(lwf and mu > 1
                                      and lwf_reference == "stage_start"),
                    reset_optimizer=reset_optimizer)
                result.append(converging(stage, [mu], patience, metric))
                if ewc and mu < num_exits:
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
