"""The regime registry: names, classes, and how an epoch budget is split.

Every place that turns a regime *name* into a regime (the `train` and
`compare` commands, `get_regime`, the experiment runner) goes through this
module, so a regime registered here works everywhere, and nowhere else
keeps a list of its own.

A name is registered with its class and its *budget split*: the rule that
turns one epoch budget E (and the model's number of exits K) into the
regime's phase lengths. `keras-eexit train --regime NAME --epochs E` and
`keras-eexit compare --epochs E` use the same rule.

| name | phases (K exits, budget E) |
|---|---|
| joint | one phase of E epochs |
| two_stage, disjoint | backbone ⌈2E/3⌉, heads the rest (split over the K−1 heads when `heads="one_by_one"`) |
| mixed | backbone ⌊E/2⌋, joint the rest |
| branch_wise, separate | ⌊E/K⌋ per exit |
| sequential | warm-up ⌊E/2⌋, the rest over the K stages (no warm-up: ⌊E/K⌋ per stage); EWC's Fisher passes add one epoch each |
| distillation | backbone ⌊E/2⌋, the rest over the K−1 distillation phases (`mode="joint"`: E) |
| joint_branch | joint ⌊E/2⌋, the rest over the K branch phases (K−1 with `train_segment=False`) |
| joint_two_stage | joint ⌈2E/3⌉, heads the rest (split over the K−1 heads, one by one by default) |
| pretrained_branch | backbone ⌊E/2⌋, the rest over the K branches (K−1 with `train_segments=False`) |

Every phase gets at least one epoch, so a small budget may be exceeded;
`plan_text` says what will run, by how much it exceeds the budget, and
which phases a method adds after it (ZTW trains its ensembles after the
regime: extra training, as in the paper). Parameters given explicitly always win
over the split.

Example:

>>> split_budget("mixed", 12, 3)
{'backbone_epochs': 6, 'joint_epochs': 6}
>>> regime = regime_for_budget("two_stage", 12, 3, verbose=False)
>>> regime.epochs_for(3)
12
"""

import dataclasses
import inspect
import math

from keras_eexit.regimes.branch_wise import BranchWise
from keras_eexit.regimes.distillation import Distillation
from keras_eexit.regimes.hybrids import JointBranch
from keras_eexit.regimes.hybrids import JointTwoStage
from keras_eexit.regimes.hybrids import PretrainedBranch
from keras_eexit.regimes.joint import Joint
from keras_eexit.regimes.mixed import Mixed
from keras_eexit.regimes.separate import Separate
from keras_eexit.regimes.sequential import SequentialRegime
from keras_eexit.regimes.two_stage import TwoStage
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int


@dataclasses.dataclass(frozen=True)
class Budget:
    """Shares of an epoch budget, each at least one epoch.

    Args:
        epochs: the budget E.
        num_exits: K, the model's number of exits.
        params: the regime parameters given explicitly (a rule may depend
            on them, e.g. `heads="one_by_one"`).
    """

    epochs: int
    num_exits: int
    params: dict

    def part(self, numerator, denominator, ceil=False):
        """E·numerator/denominator, rounded down (or up), at least 1."""
        value = self.epochs * numerator / denominator
        return max(1, math.ceil(value) if ceil else int(value))

    def rest(self, used):
        """What is left of E after `used` epochs, at least 1."""
        return max(1, self.epochs - used)

    def each(self, epochs, count):
        """`epochs` shared by `count` phases, at least 1 each."""
        return max(1, epochs // max(1, count))

    @property
    def half(self):
        return self.part(1, 2)

    @property
    def two_thirds(self):
        return self.part(2, 3, ceil=True)


def _two_stage(b, first="backbone_epochs", heads_default="together"):
    heads = b.rest(b.two_thirds)
    if b.params.get("heads", heads_default) == "one_by_one":
        heads = b.each(heads, b.num_exits - 1)
        # K−1 head phases of at least one epoch each: shorten phase 1.
        return {first: max(1, min(b.two_thirds,
                                  b.epochs - heads * (b.num_exits - 1))),
                "heads_epochs": heads}
    return {first: b.two_thirds, "heads_epochs": heads}


def _sequential(b):
    warmup = b.params.get("warmup_epochs", b.half)
    if not warmup:
        return {"warmup_epochs": 0,
                "epochs_per_exit": b.each(b.epochs, b.num_exits)}
    return {"warmup_epochs": warmup,
            "epochs_per_exit": b.each(b.rest(warmup), b.num_exits)}


def _distillation(b):
    if b.params.get("mode", "sequential") == "joint":
        return {"distill_epochs": b.epochs}
    return {"backbone_epochs": b.half,
            "distill_epochs": b.each(b.rest(b.half), b.num_exits - 1)}


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered regime.

    Args:
        cls: the `Regime` subclass.
        split: `f(Budget) -> {parameter: epochs}`, the phase lengths that
            fill the budget (see the module docstring).
    """

    cls: type
    split: object


_ENTRIES = {}


def register(name, cls, split):
    """Registers a regime name with its class and its budget split.

    Args:
        name: the name used by `get_regime` and the command line.
        cls: a `Regime` subclass taking the split's parameters.
        split: `f(Budget) -> dict` of phase-length parameters (`lambda b:
            {}` for a regime of one phase that lasts as long as `fit`).

    Returns:
        `cls`.
    """
    if not callable(split):
        raise ValueError(f"Regime {name!r}: `split` must be callable, "
                         f"received {split!r}.")
    _ENTRIES[name] = Entry(cls, split)
    REGIMES[name] = cls
    return cls


REGIMES = {}
"""Regime names → classes (filled by `register`; read-only for callers)."""

register("joint", Joint, lambda b: {})
register("two_stage", TwoStage, _two_stage)
register("disjoint", TwoStage, _two_stage)
register("mixed", Mixed,
         lambda b: {"backbone_epochs": b.half,
                    "joint_epochs": b.rest(b.half)})
register("branch_wise", BranchWise,
         lambda b: {"epochs_per_exit": b.each(b.epochs, b.num_exits)})
register("separate", Separate,
         lambda b: {"epochs_per_exit": b.each(b.epochs, b.num_exits)})
register("sequential", SequentialRegime, _sequential)
register("distillation", Distillation, _distillation)
def _branches(b, flag):
    """Branch phases of a hybrid: K (Alg. 3 schedule) or K−1 (heads)."""
    return b.num_exits - (0 if b.params.get(flag, True) else 1)


register("joint_branch", JointBranch,
         lambda b: {"joint_epochs": b.half,
                    "epochs_per_exit": b.each(
                        b.rest(b.half), _branches(b, "train_segment"))})
register("joint_two_stage", JointTwoStage,
         lambda b: _two_stage(b, first="joint_epochs",
                              heads_default="one_by_one"))
register("pretrained_branch", PretrainedBranch,
         lambda b: {"backbone_epochs": b.half,
                    "epochs_per_exit": b.each(
                        b.rest(b.half), _branches(b, "train_segments"))})


def _entry(name):
    check_choice("regime", name, REGIMES)
    entry = _ENTRIES.get(name)
    if entry is None or entry.cls is not REGIMES[name]:
        raise ValueError(
            f"Regime {name!r} is in REGIMES but was not registered with a "
            "budget split: add it with "
            "keras_eexit.regimes.registry.register(name, cls, split)."
        )
    return entry


def parameters(name):
    """The parameter names regime `name` accepts."""
    accepted = inspect.signature(_entry(name).cls.__init__).parameters
    return sorted(p for p in accepted if p != "self")


def get_regime(name, **kwargs):
    """Builds a regime by name.

    Args:
        name: a key of `REGIMES` (`"joint"`, `"two_stage"`, ...).
        **kwargs: the regime's parameters.

    Returns:
        A new `Regime` instance.

    Example:

    >>> get_regime("mixed", backbone_epochs=2, joint_epochs=3).epochs_for(3)
    5
    """
    cls = _entry(name).cls
    valid = parameters(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"Regime {name!r} has no parameter(s) {unknown}. Valid "
            f"parameters: {valid}."
        )
    return cls(**kwargs)


def split_budget(name, epochs, num_exits, **params):
    """The phase lengths that fit regime `name` into `epochs` epochs.

    Args:
        name: a registered regime name.
        epochs: the budget E (an integer >= 1).
        num_exits: K, the model's number of exits.
        **params: parameters given explicitly; they are not overridden.

    Returns:
        `{parameter: epochs}` for the phase-length parameters not in
        `params`.
    """
    entry = _entry(name)
    check_positive_int("epochs", epochs)
    check_positive_int("num_exits", num_exits)
    shares = entry.split(Budget(int(epochs), int(num_exits), dict(params)))
    return {k: v for k, v in shares.items() if k not in params}


def regime_for_budget(name, epochs, num_exits, **params):
    """Regime `name` with its phases fitted into an epoch budget.

    Args:
        name: a registered regime name.
        epochs: the budget E.
        num_exits: K.
        **params: the regime's parameters; those given win over the split.

    Returns:
        A `Regime`.
    """
    return get_regime(name, **{**split_budget(name, epochs, num_exits,
                                              **params), **params})


def plan_text(regime, num_exits, epochs=None, budget=None):
    """One line saying what `regime` runs: phases and epochs.

    Args:
        regime: a `Regime`.
        num_exits: K.
        epochs: the epochs `fit` runs, for regimes with no length of their
            own.
        budget: the epoch budget the regime was fitted into
            (`regime_for_budget`), if any: the line then says when the
            regime runs longer (every phase runs at least one epoch) and
            which phases a method adds after the budget (ZTW trains its
            ensembles after the regime).

    Returns:
        E.g. `"backbone 8 + heads 4 = 12 epochs"`,
        `"joint (until fit ends) for 12 epochs"`, or
        `"warmup 1 + stage_1 1 + stage_2 1 + stage_3 1 = 4 epochs (1 more
        than the budget of 3: every phase runs at least one epoch)"`.
    """
    phases = regime.phases_for(num_exits)
    parts = []
    for phase in phases:
        if phase.monitor is not None:
            most = "" if phase.epochs is None else f", at most {phase.epochs}"
            watched = " and ".join(phase.monitors)
            verb = "stall" if len(phase.monitors) > 1 else "stalls"
            parts.append(f"{phase.name} (until {watched} {verb} "
                         f"{phase.patience}{most})")
        elif phase.epochs is None:
            parts.append(f"{phase.name} (until fit ends)")
        else:
            parts.append(f"{phase.name} {phase.epochs}")
    total = regime.epochs_for(num_exits)
    if total is None:
        text = " + ".join(parts)
        if epochs is not None:
            text += f" for {epochs} epoch{'' if epochs == 1 else 's'}"
        return text
    unit = "epoch" if total == 1 else "epochs"
    bound = "" if all(p.fixed_length for p in phases) else "at most "
    text = " + ".join(parts) + f" = {bound}{total} {unit}"
    notes = [] if budget is None else _budget_notes(regime, num_exits,
                                                    total, budget)
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _budget_notes(regime, num_exits, total, budget):
    """Why `regime` runs longer than `budget`: short phases, a method."""
    inner = getattr(regime, "inner", None)
    added = []
    if inner is not None:
        added = regime.phases_for(num_exits)[
            len(inner.phases_for(num_exits)):]
    own = total - sum(p.epochs for p in added)
    notes = []
    if own > budget:
        fisher = any(p.fisher_exit is not None
                     for p in regime.phases_for(num_exits))
        notes.append(f"{own - budget} more than the budget of {budget}: "
                     "every phase runs at least one epoch"
                     + (", each Fisher pass adds one" if fisher else ""))
    if added:
        names = " + ".join(f"{p.name} {p.epochs}" for p in added)
        notes.append(f"{names} added by method {regime.method} after the "
                     "budget")
    return notes


def converged_regime(name, budget, num_exits, patience, max_epochs=None,
                     metric="loss", **params):
    """Regime `name` with every phase run to convergence, as its paper does.

    Uses the named regime's own `patience`/`metric`: each phase ends when
    the validation `metric` of every exit it trains has gone `patience`
    epochs without improving and restores its best weights (Kubaty et al.'s
    early stopping; Zniber et al.'s stages watch the stage's exit). The
    phase lengths of the budget split (or `max_epochs` for every phase)
    are the maxima; a warm-up of 0 epochs stays off.

    Args:
        name: a registered regime name.
        budget: the epoch budget E (for the maxima when `max_epochs` is
            `None`).
        num_exits: K.
        patience: epochs without improvement before a phase ends.
        max_epochs: the most epochs of each phase (`None`: the split).
        metric: the per-exit metric watched (`"loss"` or `"accuracy"`).
        **params: the regime's other parameters; explicit lengths win.

    Returns:
        A `Regime`.
    """
    maxima = split_budget(name, budget, num_exits, **params)
    if max_epochs is not None:
        maxima = {k: (max_epochs if v else v) for k, v in maxima.items()}
        if "max_epochs" in parameters(name):
            maxima["max_epochs"] = max_epochs
    return get_regime(name, **{**maxima, **params, "patience": patience,
                               "metric": metric})


def until_convergence(regime, num_exits, patience, max_epochs=None,
                      monitor="val_loss", min_delta=0.0):
    """The same phases, each run until `monitor` stops improving.

    Kubaty et al. train every phase until its heads stop improving (early
    stopping, best weights restored). A Fisher pass (one epoch in which
    nothing trains) keeps its length.

    Args:
        regime: a `Regime`.
        num_exits: K.
        patience: epochs without improvement before a phase ends.
        max_epochs: the most epochs of each phase (`None`: no limit).
        monitor: the logged metric watched (needs validation data for
            `val_*`).
        min_delta: the smallest change that counts as an improvement.

    Returns:
        A new `Regime` (same class behaviour: `Regime` with the new phases;
        `prepare_model` of `Separate` stays the caller's job).
    """
    from keras_eexit.regimes.regime import Regime

    if isinstance(patience, bool) or not isinstance(patience, int) or \
            patience < 0:
        from keras_eexit.utils.validation import invalid_value

        raise invalid_value("patience", "an integer >= 0", patience)
    if max_epochs is not None:
        check_positive_int("max_epochs", max_epochs)
    phases = [
        phase if phase.fisher_exit is not None else dataclasses.replace(
            phase, epochs=max_epochs, monitor=monitor, patience=patience,
            min_delta=min_delta, restore_best=True)
        for phase in regime.phases_for(num_exits)]
    converged = Regime(phases, verbose=regime.verbose)
    check = getattr(regime, "check_model", None)
    if check is not None:
        converged.check_model = check
    return converged
