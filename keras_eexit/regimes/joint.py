"""The joint regime: every exit trained together on a weighted loss sum."""

import numpy as np

from keras_eexit.losses.damping_functions import check_alpha
from keras_eexit.losses.damping_loss import DampingLoss
from keras_eexit.losses.exit_cross_entropy import CROSSENTROPY_NAMES
from keras_eexit.losses.exit_damping_loss import DAMPING_LOSSES
from keras_eexit.losses.exit_damping_loss import ExitDampingLoss
from keras_eexit.losses.selective_cross_entropy import SelectiveCrossEntropy
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.regime import Regime
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

SDN_FINAL_TARGET = 0.9


def sdn_schedule(num_exits):
    """The Shallow-Deep Networks loss-weight schedule (Kaya et al., 2019).

    Internal exit `k` (1..K-1) has a target `τ_k = 0.9·k/(K-1)`, which gives
    SDN's 0.15, 0.30, ..., 0.90 for its six internal classifiers. At epoch
    `e` of `E` its weight is `min(τ_k, 0.01 + e·τ_k/E)`; the final exit's
    weight is 1 throughout (as in the authors' `model_funcs.py`).

    Args:
        num_exits: K.

    Returns:
        A function `(epoch, epochs) -> list of K weights`.
    """
    targets = SDN_FINAL_TARGET * np.arange(1, num_exits) / max(
        1, num_exits - 1)

    def weights(epoch, epochs):
        internal = np.minimum(targets, 0.01 + epoch * targets / epochs)
        return list(internal) + [1.0]

    return weights


LOSS_CHOICES = ("crossentropy", "damping", "power_sqrt")
DEFAULT_LAM = 0.5


class Joint(Regime):
    """Joint training: all stages and heads on `Σ_k w_k · L_k`.

    The regime of most early-exit papers (SDN, MSDNet, "Joint or disjoint",
    "Strategies at a glance"): one phase that lasts the whole `fit`. `L_k`
    is exit `k`'s cross-entropy by default.

    Adaptive gradient damping ("Diminishing Non-important Gradients for
    Training Dynamic Early-Exiting Networks") replaces it: with
    `loss="damping"` each exit minimises `-log F[y] + λ·(-log F[N+1])`,
    with `loss="power_sqrt"` the damping parts of all exits are joined as
    `λ·sqrt(Σ_k (-log F^k[N+1])²)` (see `keras_eexit.losses.DampingLoss`,
    `PowerSqrtDampingLoss`). Both need heads with a damping unit (build the
    model with `damping=True`). `dynamic=α` adds the sample-wise dynamic
    weights of the paper's sec. 3.5 (`keras_eexit.losses.dynamic_weights`).
    The paper's baselines for plain heads are `threshold` (gradient
    selection) and `label_smoothing`.

    Args:
        weights: per-exit weights: `"uniform"`, `"linear"`, `"to_final"`,
            `"han"` or an explicit list (see
            `keras_eexit.losses.exit_weights.exit_weights`).
        schedule: `None` or `"sdn"` (weights of internal exits grow during
            training, see `sdn_schedule`; `weights` is then ignored).
        gradient_equilibrium: rescale the gradients each exit sends into the
            shared backbone (Li et al., ICCV 2019).
        learning_rate: optional learning rate set when training starts.
        verbose: print the phase as it starts.
        loss: `"crossentropy"` (default; the loss given to `compile`, or
            cross-entropy), `"damping"` (eq. 2) or `"power_sqrt"` (eq. 4).
        lam: λ >= 0 of the damping losses (default 0.5, our choice: the
            paper's value could not be checked offline). Only with a damping
            loss.
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

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[keras_eexit.regimes.Joint("han")])

    model = keras_eexit.models.cnn1d(damping=True)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, epochs=10, callbacks=[
        keras_eexit.regimes.Joint(loss="power_sqrt", lam=0.5, dynamic=0.8)])
    ```
    """

    def __init__(self, weights="uniform", schedule=None,
                 gradient_equilibrium=False, learning_rate=None,
                 verbose=True, loss="crossentropy", lam=None, dynamic=None,
                 dynamic_gradient=False, threshold=None,
                 label_smoothing=0.0):
        if schedule is not None:
            check_choice("schedule", schedule, ("sdn",))
        self.weights = weights
        self.schedule = schedule
        self.loss = check_choice("loss", loss, LOSS_CHOICES)
        self.lam = lam
        self.dynamic = dynamic
        self.dynamic_gradient = dynamic_gradient
        self.threshold = threshold
        self.label_smoothing = label_smoothing
        self._term = self._make_term()
        super().__init__(
            [self._phase(weights, learning_rate, gradient_equilibrium)],
            verbose=verbose,
        )

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
            lam = DEFAULT_LAM if self.lam is None else self.lam
            return ExitDampingLoss(DAMPING_LOSSES[self.loss](lam), alpha=self.dynamic,
                                   dynamic_gradient=self.dynamic_gradient)
        if self.threshold is not None or self.label_smoothing:
            return SelectiveCrossEntropy(self.threshold,
                                         self.label_smoothing)
        return None

    def _phase(self, weights, learning_rate, gradient_equilibrium):
        return Phase(
            "joint", None, weights=weights, learning_rate=learning_rate,
            gradient_equilibrium=gradient_equilibrium,
            terms=() if self._term is None else (self._term,),
        )

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
        if self.schedule == "sdn":
            first = self.phases[0]
            self.phases[0] = self._phase(
                sdn_schedule(model.num_exits), first.learning_rate,
                first.gradient_equilibrium,
            )
