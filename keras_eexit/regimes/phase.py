"""`Phase`: one step of a training regime."""

import dataclasses

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value


def _exit_set(argument, value):
    """Normalises "all" / "none" / 1-based exit numbers (frozenset or str)."""
    if value in ("all", "none"):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        exits = frozenset(value)
    except TypeError:
        raise invalid_value(
            argument, "'all', 'none' or 1-based exit numbers", value
        ) from None
    if not exits or not all(
            isinstance(e, int) and not isinstance(e, bool) and e >= 1
            for e in exits):
        raise invalid_value(
            argument, "'all', 'none' (nothing trains) or a non-empty list "
            "of 1-based exit numbers", value
        )
    return exits


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a training regime.

    A phase says what trains, on which objective, and for how long.

    Args:
        name: shown in the progress output; the phase index is logged as
            `"phase"` in the epoch logs and `History`.
        epochs: length in epochs. With `monitor`, the most epochs the phase
            may last (`None`: no limit). `None` without `monitor` lets the
            phase run until `fit` ends (last phase only).
        train_segments: the segments that train: `"all"`, `"none"`, or
            a non-empty list of 1-based exit numbers (segment `k` is the
            part of the backbone between exits `k - 1` and `k`). The
            others are frozen: their weights, BatchNorm statistics and
            optimizer state do not move.
        train_heads: the exit heads that train, in the same form.
        weights: per-exit cross-entropy weights (a scheme name, a list, or a
            function `f(epoch_in_phase, phase_epochs) -> list` evaluated at
            every epoch, for schedules).
        terms: extra objective terms (for example
            `keras_eexit.losses.ExitDistillation`).
        learning_rate: assigned to the optimizer when the phase starts.
        monitor: a logged metric (e.g. `"val_exit_3_accuracy"`) that ends the
            phase when it stops improving for `patience` epochs; or a list
            of metrics (e.g. every trained exit's validation loss), and
            the phase ends when EVERY one of them has gone `patience`
            epochs without improving. The best weights are those of the
            last epoch in which ANY of them improved (the early stopping
            of Kubaty et al.'s code, `EarlyStopperEarlyExit`).
        patience: epochs without improvement before the phase ends.
        min_delta: smallest change that counts as an improvement.
        mode: `"auto"`, `"min"` or `"max"` (auto: max for accuracy-like
            names, min otherwise).
        restore_best: at the end of a monitored phase, restore the weights of
            its best epoch.
        snapshot_teacher: when the phase starts, copy the model into a
            frozen teacher (read by `ExitDistillation(teacher="snapshot")`).
        cache_features: with a frozen backbone, reuse the features of the
            first epochs instead of recomputing them (see
            `keras_eexit.regimes.FeatureCache`).
        gradient_equilibrium: rescale the gradients meeting at each stage
            (Li et al., 2019) during this phase.
        fisher_exit: makes this a Fisher pass (EWC): for one epoch nothing
            trains; the squared per-sample gradients of exit `fisher_exit`
            (1-based) over segments 1..fisher_exit are averaged over the
            epoch's samples (at most `fisher_samples`), added to the Fisher
            diagonal, and the anchors are set to the current weights.
        fisher_samples: cap on the samples of a Fisher pass (`None`: all).
        reference_exit: when the phase ends (after `restore_best`), keep a
            frozen copy of exit `reference_exit` (1-based; segments 1..ν
            and heads 1..ν) whose outputs are that exit's reference (read
            by `keras_eexit.losses.LwFPenalty`: Zniber et al.'s ŷ*_ν, "the
            output distribution obtained with the training of IC ν").
        reset_optimizer: when the phase starts, reset the optimizer's
            state (moments and step count), as a new optimizer would
            start: for procedures whose phases are separate training runs.
            With a learning-rate schedule the step count is kept (the
            schedule runs over the whole `fit`).
        train_step: for a phase that trains by its own rule, a factory
            `f(model, phase)` returning a
            `keras_eexit.models.train_step.StepContributor` (usually a
            whole-step replacement), created when the phase starts and
            installed in the model's train step for the phase; e.g. ZTW's
            ensemble phase (`keras_eexit.methods.ZTWEnsembleStep`).
    """

    name: str
    epochs: int | None = None
    train_segments: object = "all"
    train_heads: object = "all"
    weights: object = "uniform"
    terms: tuple = ()
    learning_rate: float | None = None
    monitor: str | None = None
    patience: int = 0
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best: bool = False
    snapshot_teacher: bool = False
    cache_features: bool = False
    gradient_equilibrium: bool = False
    fisher_exit: int | None = None
    fisher_samples: int | None = None
    reference_exit: int | None = None
    reset_optimizer: bool = False
    train_step: object = None

    def __post_init__(self):
        if self.epochs is not None and (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int)
            or self.epochs < 1
        ):
            raise invalid_value(
                "epochs", "an integer >= 1 or None", self.epochs
            )
        if self.learning_rate is not None:
            check_number("learning_rate", self.learning_rate, low=0.0,
                         low_open=True)
        if isinstance(self.patience, bool) or not isinstance(
            self.patience, int
        ) or self.patience < 0:
            raise invalid_value("patience", "an integer >= 0", self.patience)
        check_choice("mode", self.mode, ("auto", "min", "max"))
        if self.monitor is not None and not isinstance(self.monitor, str):
            try:
                monitors = tuple(self.monitor)
            except TypeError:
                monitors = ()
            if not monitors or not all(isinstance(m, str)
                                       for m in monitors):
                raise invalid_value(
                    "monitor", "a metric name or a non-empty list of them",
                    self.monitor)
            object.__setattr__(self, "monitor", monitors)
        if self.reference_exit is not None and (
            isinstance(self.reference_exit, bool)
            or not isinstance(self.reference_exit, int)
            or self.reference_exit < 1
        ):
            raise invalid_value("reference_exit", "a 1-based exit number",
                                self.reference_exit)
        if self.restore_best and self.monitor is None:
            raise invalid_value(
                "restore_best", "False unless a `monitor` is set", True
            )
        object.__setattr__(
            self, "train_segments",
            _exit_set("train_segments", self.train_segments),
        )
        object.__setattr__(
            self, "train_heads", _exit_set("train_heads", self.train_heads)
        )
        object.__setattr__(self, "terms", tuple(self.terms))
        if self.fisher_exit is not None and (
            isinstance(self.fisher_exit, bool)
            or not isinstance(self.fisher_exit, int) or self.fisher_exit < 1
            or self.epochs != 1
        ):
            raise invalid_value(
                "fisher_exit", "a 1-based exit number, in a phase of "
                "epochs=1", self.fisher_exit)
        if self.train_step is not None and (
            not callable(self.train_step) or self.cache_features
            or self.fisher_exit is not None
        ):
            raise invalid_value(
                "train_step",
                "None or a factory f(model, phase) -> StepContributor, "
                "without cache_features or fisher_exit",
                self.train_step,
            )
        if self.cache_features and (
            self.train_segments != "none" or self.terms
        ):
            raise invalid_value(
                "cache_features",
                "False unless every segment is frozen "
                "(train_segments='none') and the objective has no extra "
                "terms",
                True,
            )

    @property
    def monitors(self):
        """The monitored metrics as a tuple (empty without `monitor`)."""
        if self.monitor is None:
            return ()
        return (self.monitor,) if isinstance(self.monitor, str) else (
            self.monitor)

    @property
    def fixed_length(self):
        """Whether the phase lasts exactly `epochs` epochs."""
        return self.monitor is None and self.epochs is not None

    def trains(self, which, k, num_exits):
        """Whether segment/head `k` (0-based) trains in this phase."""
        chosen = self.train_segments if which == "segments" else (
            self.train_heads
        )
        if chosen == "all":
            return True
        if chosen == "none":
            return False
        return (k + 1) in chosen

    def check_exits(self, num_exits):
        """Raises if the phase names exits the model does not have."""
        if self.reference_exit is not None and (
            self.reference_exit > num_exits
        ):
            raise ValueError(
                f"Phase {self.name!r} keeps a reference of exit "
                f"{self.reference_exit}, but the model has {num_exits} exits "
                f"(valid: 1..{num_exits})."
            )
        if self.fisher_exit is not None and self.fisher_exit > num_exits:
            raise ValueError(
                f"Phase {self.name!r} asks for the Fisher of exit "
                f"{self.fisher_exit}, but the model has {num_exits} exits "
                f"(valid: 1..{num_exits})."
            )
        for argument in ("train_segments", "train_heads"):
            chosen = getattr(self, argument)
            if isinstance(chosen, frozenset) and max(chosen) > num_exits:
                raise ValueError(
                    f"Phase {self.name!r} references exit "
                    f"{max(chosen)} in `{argument}`, but the model has "
                    f"{num_exits} exits (valid: 1..{num_exits})."
                )
