"""The joint regime: every exit trained together on a weighted loss sum."""

import numpy as np

from keras_eexit.losses.damping_functions import DEFAULT_DAMPING_LAMBDA
from keras_eexit.losses.damping_functions import check_alpha
from keras_eexit.losses.damping_functions import check_lam
from keras_eexit.losses.damping_loss import DampingLoss
from keras_eexit.losses.exit_cross_entropy import CROSSENTROPY_NAMES
from keras_eexit.losses.exit_damping_loss import DAMPING_LOSSES
from keras_eexit.losses.exit_damping_loss import ExitDampingLoss
from keras_eexit.losses.selective_cross_entropy import SelectiveCrossEntropy
from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.regimes._common import convergence_args
from keras_eexit.regimes._common import converging
from keras_eexit.regimes._common import epochs_arg
from keras_eexit.regimes._common import reduced
from keras_eexit.regimes._common import reduction_arg
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value

SDN_FINAL_TARGET = 0.9


def sdn_schedule(num_exits):
    """The Shallow-Deep Networks loss-weight schedule (Kaya et al., 2019).

    Internal exit `k` (1..K-1) has a target `τ_k = 0.9·k/(K-1)`, which gives
    SDN's 0.15, 0.30, ..., 0.90 for its six internal classifiers. In epoch
    `e` of `E`, counted from 1 as the authors' `model_funcs.py` does
    (`sdn_train`: `for epoch in range(1, epochs+1)`, then
    `cur_coeffs = 0.01 + epoch*(max_coeffs/epochs)`, capped at
    `max_coeffs`), its weight is `min(τ_k, 0.01 + e·τ_k/E)`: the first
    epoch already trains at `0.01 + τ_k/E` and the last at `τ_k`. The final
    exit's weight is 1 throughout (`sdn_training_step` adds its loss
    unweighted).

    Args:
        num_exits: K.

    Returns:
        A function `(epoch, epochs) -> list of K weights`, where `epoch` is
        0-based (a `Phase` schedule's convention): epoch 0 is SDN's
        epoch 1.

    Example:

    ```python
    sdn_schedule(3)(0, 4)  # first of 4 epochs: [0.1225, 0.235, 1.0]
    ```
    """
    targets = SDN_FINAL_TARGET * np.arange(1, num_exits) / max(
        1, num_exits - 1)

    def weights(epoch, epochs):
        internal = np.minimum(targets,
                              0.01 + (epoch + 1) * targets / epochs)
        return list(internal) + [1.0]

    return weights


LOSS_CHOICES = ("crossentropy", "damping", "power_sqrt")
# Weight schemes of "Strategies at a glance", whose Algorithm 1 sums the
# weighted losses (line 12: L ← L + w_n·loss_n).
SUMMED_SCHEMES = ("linear", "to_final")
DEFAULT_LAM = DEFAULT_DAMPING_LAMBDA


class Joint(Regime):
    """Joint training: all stages and heads on one weighted loss over exits.

    The regime of most early-exit papers: one phase (phase 2 of Kubaty et
    al.'s "Joint or disjoint", eq. 2; Algorithm 1 of "Strategies at a
    glance") in which every segment and head trains on
    `Σ_k w_k · L_k` (`reduction="sum"`) or `Σ_k w_k · L_k / K`
    (`reduction="mean"`). `L_k` is exit `k`'s cross-entropy by default.

    The papers' own choices (every name maps to exactly this procedure):

    | paper | call |
    |---|---|
    | Kubaty et al., joint (code: `methods/early_exit.py`, mean over heads) | `Joint()` |
    | "Strategies at a glance", Alg. 1 (`w_n = c·n/Σk`, c = 1, line 11) | `Joint("linear")` (sum) |
    | "Strategies at a glance", set-up sec. 5.4 (weights 0.3 → 1.0) | `Joint("to_final")` (sum) |
    | Kaya et al. (SDN) weight schedule | `Joint(schedule="sdn")` (sum) |
    | damping paper, eq. 3 / eq. 4 | `Joint(loss="damping")`, `Joint(loss="power_sqrt")` (sum) |

    `reduction=None` picks the paper's: `"sum"` for the weights of
    "Strategies at a glance" (`"linear"`: Alg. 1 line 12 adds `w_n·loss_n`
    to `L`; `"to_final"`: its set-up), with a damping loss (eq. 3 and 4
    sum over classifiers) or the SDN schedule (Kaya et al. sum the
    weighted losses), `"mean"` otherwise (Kubaty et al.'s code averages
    the heads' losses). The two differ by a factor K in the gradients,
    which matters with a fixed learning rate.

    Set-ups of the papers, for reproduction: Kubaty et al. (appendix D)
    use AdamW without weight decay, batch 128, learning rates searched per
    phase, and early stopping per phase (below); "Strategies at a glance"
    (sec. 5.3) SGD with momentum 0.9 at 0.1 (ResNet) / 0.01 (VGG) or Adam
    at 0.001 (MobileNet), batch 128, 200 (CIFAR-10) / 300 (CIFAR-100)
    epochs, early-stopping patience 10.

    Convergence (`patience`): the phase ends when every exit's validation
    `metric` has gone `patience` epochs without improving, and the weights
    of the last epoch in which any exit improved are restored (Kubaty et
    al.'s early stopping, sec. 4 "For proper model convergence in each
    phase we utilize early-stopping"; their text monitors accuracy).

    Adaptive gradient damping ("Diminishing Non-important Gradients for
    Training Dynamic Early-Exiting Networks") replaces the cross-entropy:
    with `loss="damping"` each exit minimises `-log F[y] + λ·(-log F[N+1])`
    (eq. 2-3), with `loss="power_sqrt"` the damping parts of all exits are
    joined as `λ·sqrt(Σ_k (-log F^k[N+1])²)` (eq. 4; see
    `keras_eexit.losses.DampingLoss`, `PowerSqrtDampingLoss`). Both need
    heads with a damping unit (build the model with `damping=True`).
    `dynamic=α` adds the sample-wise dynamic weights of the paper's sec. 3.5
    (`keras_eexit.losses.dynamic_weights`). The paper's baselines for plain
    heads are `threshold` (gradient selection) and `label_smoothing`. Its
    set-up (sec. 4): MSDNet/RANet, SGD, λ = 0.005 (CIFAR-100), 0.075
    (CIFAR-10), 0.01 (ImageNet), α = 0.8 (CIFAR) / 0.3 (ImageNet).

    Args:
        weights: per-exit weights: `"uniform"`, `"linear"`, `"to_final"`,
            `"han"` or an explicit list (see
            `keras_eexit.losses.exit_weights`).
        schedule: `None` or `"sdn"` (weights of internal exits grow during
            training, see `sdn_schedule`; `weights` is then ignored).
        scale: `c` of the `"linear"` weights (`w_n = c·n/Σk`, Alg. 1
            eq. 3; `None`: the paper's default c = 1). Only with
            `weights="linear"`.
        gradient_equilibrium: rescale the gradients each exit sends into the
            shared backbone (Li et al., ICCV 2019).
        learning_rate: optional learning rate set when training starts.
        verbose: `"auto"` (print each phase as it starts unless
            `fit(verbose=0)`), `True` (even then) or `False`.
        loss: `"crossentropy"` (default; the loss given to `compile`, or
            cross-entropy), `"damping"` (eq. 2) or `"power_sqrt"` (eq. 4).
        lam: λ >= 0 of the damping losses, or a preset name
            (`"cifar100"` 0.005 — the default —, `"cifar10"` 0.075,
            `"imagenet"` 0.01; `keras_eexit.losses.DAMPING_LAMBDAS`). Only
            with a damping loss.
        dynamic: `None`, or α in (0, 1] to weight every sample and exit by
            `1 + w̃`, `w̃ ∈ [-α, α]` (the paper uses 0.8 on CIFAR, 0.3 on
            ImageNet). Only with a damping loss.
        dynamic_gradient: let gradients flow through the dynamic weights
            (the paper's "with gradient" ablation). Only with `dynamic`.
        threshold: `None` or τ in (0, 1]: drop the loss of samples whose
            true-class softmax exceeds τ (threshold gradient selection
            baseline). Only with `loss="crossentropy"`.
        label_smoothing: ε in [0, 1) (label smoothing baseline). Only with
            `loss="crossentropy"`.
        reduction: `None` (the paper's, above), `"mean"` or `"sum"`.
        patience: `None` (train until `fit` ends) or the early-stopping
            patience of convergence (above).
        metric: the per-exit validation metric of convergence
            (`"accuracy"` needs `compile(metrics=["accuracy"])`; `"loss"`).
        max_epochs: with `patience`, the most epochs the phase may last
            (`None`: until `fit` ends).

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[keras_eexit.regimes.Joint("han")])

    model = keras_eexit.models.cnn1d(damping=True)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, epochs=10, callbacks=[
        keras_eexit.regimes.Joint(loss="power_sqrt", lam="cifar10",
                                  dynamic=0.8)])
    ```

    References:
        - Kubaty et al., Joint or Disjoint: Mixing Training Regimes for
            Early-Exit Models (code: kamadforge/early-exit-benchmark).
        - Rahmath P et al., Strategies at a glance (Algorithm 1).
        - Diminishing Non-important Gradients for Training Dynamic
            Early-Exiting Networks (eq. 2-4, sec. 3.5).
    """

    def __init__(self, weights="uniform", schedule=None,
                 gradient_equilibrium=False, learning_rate=None,
                 verbose="auto", loss="crossentropy", lam=None, dynamic=None,
                 dynamic_gradient=False, threshold=None,
                 label_smoothing=0.0, reduction=None, patience=None,
                 metric="accuracy", max_epochs=None, scale=None):
        if schedule is not None:
            check_choice("schedule", schedule, ("sdn",))
        if scale is not None:
            if not (isinstance(weights, str) and weights == "linear"
                    and schedule is None):
                raise invalid_value(
                    "scale", "None unless weights='linear' (c of Alg. 1's "
                    "w_n = c·n/Σk) without a schedule", scale)
            scale = check_number("scale", scale, 0.0, low_open=True)
        self.weights = weights
        self.schedule = schedule
        self.scale = scale
        self.loss = check_choice("loss", loss, LOSS_CHOICES)
        self.lam = lam
        self.dynamic = dynamic
        self.dynamic_gradient = dynamic_gradient
        self.threshold = threshold
        self.label_smoothing = label_smoothing
        self._term = self._make_term()
        if reduction is None:
            reduction = "sum" if (
                self.loss != "crossentropy" or schedule == "sdn"
                or (isinstance(weights, str) and weights in SUMMED_SCHEMES)
            ) else "mean"
        self.reduction = reduction_arg(reduction)
        patience, metric = convergence_args(patience, metric)
        if max_epochs is not None:
            epochs_arg("max_epochs", max_epochs)
        if isinstance(weights, str):
            exit_weights(weights, 2)  # an unknown scheme fails here
        terms = () if self._term is None else (self._term,)

        def phases(num_exits):
            chosen = sdn_schedule(num_exits) if schedule == "sdn" else (
                weights if scale is None
                else list(exit_weights(weights, num_exits, scale)))
            phase = Phase(
                "joint", max_epochs if patience is not None else None,
                weights=reduced(chosen, num_exits, self.reduction),
                learning_rate=learning_rate,
                gradient_equilibrium=gradient_equilibrium, terms=terms)
            return [converging(phase, range(1, num_exits + 1), patience,
                               metric)]

        super().__init__(phases, verbose=verbose)

    def _make_term(self):
        """The objective term replacing cross-entropy, or `None`."""
        damping = self.loss != "crossentropy"
        if not damping:
            for argument in ("lam", "dynamic"):
                if getattr(self, argument) is not None:
                    raise invalid_value(
                        argument,
                        "None unless loss is 'damping' or 'power_sqrt'",
                        getattr(self, argument),
                    )
        if self.dynamic is not None:
            check_alpha(self.dynamic, "dynamic")
        check_bool("dynamic_gradient", self.dynamic_gradient)
        if self.dynamic_gradient and self.dynamic is None:
            raise invalid_value(
                "dynamic_gradient", "False unless `dynamic` is set",
                self.dynamic_gradient)
        if damping and (self.threshold is not None or self.label_smoothing):
            raise invalid_value(
                "loss",
                "'crossentropy' with the threshold / label_smoothing "
                "baselines (they are plain-head alternatives to damping)",
                self.loss,
            )
        if damping:
            lam = DEFAULT_LAM if self.lam is None else check_lam(self.lam)
            return ExitDampingLoss(DAMPING_LOSSES[self.loss](lam),
                                   alpha=self.dynamic,
                                   dynamic_gradient=self.dynamic_gradient)
        if self.threshold is not None or self.label_smoothing:
            return SelectiveCrossEntropy(self.threshold,
                                         self.label_smoothing)
        return None

    def check_model(self, model):
        from keras_eexit.chain import has_damping_unit

        base = model.base_loss
        if self._term is not None and not (
            base is None or base in CROSSENTROPY_NAMES
        ):
            raise ValueError(
                f"Joint(loss={self.loss!r}, ...) sets the training loss, but "
                f"the model was compiled with loss={base!r}: compile without "
                "`loss` (or drop the Joint loss options)."
            )
        if self._term is not None:
            self._term.check_model(model)
        elif any(has_damping_unit(h) for h in model.heads) and not isinstance(
            base, DampingLoss
        ):
            raise ValueError(
                "The model has damping heads (N + 1 logits) but Joint uses "
                "loss='crossentropy', which would silently train the damping "
                "unit as a class-less softmax entry (the damping loss with "
                "λ = 0). Pass loss='damping' or loss='power_sqrt' (lam=0 for "
                "no damping), or build the model with damping=False."
            )
