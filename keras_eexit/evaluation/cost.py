"""What an exit costs: FLOPs (the papers') or a measured `CostProfile`.

Every sweep, budget table, exit policy and plot works on one per-exit
cumulative cost vector. By default that is `ExitOutputs.flops` (FLOPs, as
the papers compare); `cost=profile` puts a measured `CostProfile` (seconds
per sample on one runtime, batch size and device:
`keras_eexit.inference.measure_costs`) in its place, so that a budget can
be "3 ms per sample on this phone". `resolve_cost` is the one place where
that choice is made.
"""

import dataclasses
import hashlib
import json
import math
import numbers
import os

import numpy as np

from keras_eexit.utils.atomic import write_text
from keras_eexit.utils.validation import invalid_value

FORMAT = "keras-eexit-cost-profile"
FORMAT_VERSION = 1

FLOPS = "FLOPs"
"""The unit of FLOP costs (`ExitOutputs.flops`)."""

SECONDS = "s"
"""The unit of measured costs (`CostProfile.seconds_per_sample`)."""

UNITS = (FLOPS, SECONDS)

_DISPLAY = {FLOPS: ("MFLOPs", 1e6), SECONDS: ("ms", 1e-3)}

_REQUIRED_KEYS = ("format", "seconds_per_sample", "seconds_per_batch",
                  "runtime", "batch_size", "model_signature", "exit_names")


def display_unit(unit):
    """`(label, scale)` to show costs of `unit`: MFLOPs or milliseconds.

    Args:
        unit: `"FLOPs"` or `"s"`.

    Returns:
        `("MFLOPs", 1e6)` or `("ms", 1e-3)`: divide a cost by the scale
        to show it in the label's unit.

    Example:

    >>> display_unit("s")
    ('ms', 0.001)
    """
    if unit not in _DISPLAY:
        raise invalid_value("unit", f"one of {list(UNITS)}", unit)
    return _DISPLAY[unit]


def format_cost(value, unit):
    """A cost as people read it: `"3 ms"`, `"12.5 MFLOPs"`.

    Example:

    >>> format_cost(0.003, "s")
    '3 ms'
    """
    label, scale = display_unit(unit)
    return f"{float(value) / scale:.4g} {label}"


def model_signature(source):
    """A short hash of what a model's costs depend on.

    The exit names, the cumulative parameters and the cumulative FLOPs
    (2 per multiply-add) of each exit: the same architecture at another
    input size or width gets another signature; the same architecture
    trained further keeps it (its weights do not change its speed).

    Args:
        source: a `MultiExitModel` or the `ExitOutputs` of `collect`.

    Returns:
        A 16-character hexadecimal string.
    """
    if hasattr(source, "params_per_exit"):  # a model
        names = list(source.exit_names)
        params = source.params_per_exit()
        flops = source.flops_per_exit()
    else:
        names = list(source.exit_names)
        params = source.params
        costs = getattr(source, "costs", None) or {}
        if "keras_eexit" in costs:
            flops = costs["keras_eexit"][0]
        elif getattr(source, "flops_convention", None) == "keras_eexit":
            flops = source.flops
        else:
            flops = None
    payload = {"exits": names,
               "params": [int(p) for p in np.asarray(params).reshape(-1)],
               "flops": None if flops is None else [
                   int(f) for f in np.asarray(flops).reshape(-1)]}
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _positive_costs(argument, values, count=None):
    """Finite, positive, non-decreasing costs as a float tuple."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        array = np.array([np.nan])
    expected = "finite, positive, non-decreasing seconds, one per exit"
    if count is not None:
        expected += f" ({count})"
    if (array.size == 0 or (count is not None and array.size != count)
            or not np.all(np.isfinite(array)) or np.any(array <= 0)
            or np.any(np.diff(array) < 0)):
        raise invalid_value(argument, expected, values)
    return tuple(float(v) for v in array)


def _call_costs(values, per_batch):
    """Per-call costs: finite, non-negative, non-decreasing, at most the
    batch's, one per exit, as a float tuple."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        array = np.array([np.nan])
    per_batch = np.asarray(per_batch, np.float64)
    if (array.size != per_batch.size or not np.all(np.isfinite(array))
            or np.any(array < 0) or np.any(np.diff(array) < 0)
            or np.any(array > per_batch * (1 + 1e-9))):
        raise invalid_value(
            "seconds_per_call", "None, or finite, non-negative, "
            f"non-decreasing seconds, one per exit ({per_batch.size}), each "
            "at most that exit's seconds_per_batch", values)
    return tuple(float(v) for v in array)


def reach_probability(fractions, batch_size):
    """Chance that a batch runs a stage some of its rows need.

    A batch of `batch_size` rows drawn independently from samples of
    which a fraction `f` reach a stage runs that stage unless no row
    reaches it: `1 - (1 - f) ** batch_size`.

    Args:
        fractions: the fractions of samples reaching each stage (any
            shape, values in [0, 1]).
        batch_size: rows per call.

    Returns:
        An array of the shape of `fractions`.

    Example:

    >>> reach_probability([1.0, 0.5, 0.0], 2).tolist()
    [1.0, 0.75, 0.0]
    """
    fractions = np.clip(np.asarray(fractions, np.float64), 0.0, 1.0)
    return 1.0 - np.power(1.0 - fractions, int(batch_size))


@dataclasses.dataclass(frozen=True)
class CostProfile:
    """Measured cumulative cost of each exit on one runtime and device.

    `seconds_per_sample[k]` is the time to reach and evaluate exit `k`
    (every stage and head up to it), per sample, at `batch_size`;
    `seconds_per_batch[k]` the time of one batch of `batch_size` rows
    that all leave at exit `k`. Pass it as `cost=` to sweeps, budget
    tables, policies, `predict_early_exit` and plots: budgets are then
    seconds per sample and axes read milliseconds.

    `seconds_per_call[k]` (optional) is the part of `seconds_per_batch[k]`
    paid once per call whatever the number of rows (launching each stage,
    Python, the gathers between stages); the rest scales with the rows.
    A batch that mixes exits runs stage `j` once if any of its rows
    reaches it, so it pays that stage's fixed cost for fewer rows than a
    batch that all leave after `j`: `mean_cost` charges it, per sample,
    with the chance that a batch of `batch_size` rows runs the stage
    (`reach_probability`). Without it (None: profiles measured at batch
    1, older or hand-made ones) every cost scales with the rows, and
    `mean_cost` is the mean of `seconds_per_sample` at the exits taken.

    Made by `keras_eexit.inference.measure_costs` (or by hand, e.g. to
    plan with another device's figures). `save`/`load` keep it as JSON.

    Args:
        seconds_per_sample: cumulative seconds per sample, one per exit.
        seconds_per_batch: cumulative seconds per batch, one per exit.
        runtime: where it was measured (`"keras"`, `"saved_model"`,
            `"litert"`).
        batch_size: the batch size of the measurement.
        model_signature: `model_signature(model)` of the measured model;
            the profile refuses outputs of another model.
        exit_names: the model's exit names.
        model_name: the model's name (for messages).
        device: the device, in words.
        versions: library versions, `{name: version}`.
        repeats: timed repeats per exit.
        spread: the largest relative spread (interquartile range over
            median) of the repeats, over exits.
        seconds_per_call: cumulative fixed seconds per call, one per exit
            (at most `seconds_per_batch`), or None.
        call_batch_size: the second batch size `seconds_per_call` was
            fitted with (`measure_costs`), or None.

    Example:

    ```python
    profile = measure_costs(model, runtime="litert", batch_size=1)
    profile.save("profile.json")
    policy = best_accuracy_policy(validation, budget=0.003,
                                  cost=CostProfile.load("profile.json"))
    ```
    """

    seconds_per_sample: tuple
    seconds_per_batch: tuple
    runtime: str
    batch_size: int
    model_signature: str
    exit_names: tuple
    model_name: str = None
    device: str = None
    versions: dict = None
    repeats: int = None
    spread: float = None
    seconds_per_call: tuple = None
    call_batch_size: int = None

    def __post_init__(self):
        names = tuple(str(n) for n in self.exit_names)
        if not names:
            raise invalid_value("exit_names", "one name per exit",
                                self.exit_names)
        per_sample = _positive_costs("seconds_per_sample",
                                     self.seconds_per_sample, len(names))
        per_batch = _positive_costs("seconds_per_batch",
                                    self.seconds_per_batch, len(names))
        if (isinstance(self.batch_size, bool) or not isinstance(
                self.batch_size, numbers.Integral) or self.batch_size < 1):
            raise invalid_value("batch_size", "an integer >= 1",
                                self.batch_size)
        if not isinstance(self.runtime, str) or not self.runtime:
            raise invalid_value("runtime", "the runtime's name",
                                self.runtime)
        if not isinstance(self.model_signature, str) or not (
                self.model_signature):
            raise invalid_value("model_signature", "model_signature(model)",
                                self.model_signature)
        object.__setattr__(self, "exit_names", names)
        object.__setattr__(self, "seconds_per_sample", per_sample)
        object.__setattr__(self, "seconds_per_batch", per_batch)
        object.__setattr__(self, "batch_size", int(self.batch_size))
        object.__setattr__(self, "versions", dict(self.versions or {}))
        if self.seconds_per_call is not None:
            object.__setattr__(self, "seconds_per_call", _call_costs(
                self.seconds_per_call, per_batch))
        if self.call_batch_size is not None:
            if (isinstance(self.call_batch_size, bool) or not isinstance(
                    self.call_batch_size, numbers.Integral)
                    or not 1 <= self.call_batch_size < self.batch_size):
                raise invalid_value(
                    "call_batch_size", "None or an integer in [1, "
                    f"batch_size) ([1, {self.batch_size}))",
                    self.call_batch_size)
            object.__setattr__(self, "call_batch_size",
                               int(self.call_batch_size))

    @property
    def num_exits(self):
        """The number of exits."""
        return len(self.exit_names)

    def cost_array(self):
        """Seconds per sample as float64 `(num_exits,)`."""
        return np.asarray(self.seconds_per_sample, dtype=np.float64)

    def call_array(self):
        """Cumulative fixed seconds per call, float64 `(num_exits,)`
        (zeros without `seconds_per_call`)."""
        if self.seconds_per_call is None:
            return np.zeros(self.num_exits)
        return np.asarray(self.seconds_per_call, dtype=np.float64)

    def row_array(self):
        """Cumulative seconds per row, float64 `(num_exits,)`: the part of
        each exit's cost that scales with the rows, per row
        (`seconds_per_sample` less `seconds_per_call` over `batch_size`)."""
        return self.cost_array() - self.call_array() / self.batch_size

    def stage_call_array(self):
        """Each stage's own fixed seconds per call, `(num_exits,)` (the
        differences of `seconds_per_call`)."""
        return np.diff(self.call_array(), prepend=0.0)

    def at_batch_size(self, batch_size):
        """The profile of calls of `batch_size` rows, from the fitted parts.

        Each exit's call is taken as its fixed part per call plus
        `batch_size` times its part per row (`seconds_per_call`,
        `row_array`): plan for the rows a call will carry (a batcher that
        fills calls to 180 rows on average, a last batch that is
        partial) from one measurement. The fit is linear between the two
        measured batch sizes (`call_batch_size` and `batch_size`); far
        outside them it is an extrapolation: measure at the batch size
        you serve where you can. Cumulative costs are kept
        non-decreasing.

        Args:
            batch_size: rows per call (an integer >= 1).

        Returns:
            A `CostProfile` with that `batch_size` (the same fixed costs
            per call, the device and the rest as measured).

        Raises:
            ValueError: for a profile without `seconds_per_call` (measure
                it with `measure_costs(..., call_batch_size="auto")`) or a
                bad `batch_size`.

        Example:

        >>> profile = CostProfile((0.5, 1.0), (1.0, 2.0), "keras", 2,
        ...                       "0" * 16, ("a", "b"),
        ...                       seconds_per_call=(0.5, 1.0))
        >>> profile.at_batch_size(4).seconds_per_sample  # 0.5/4 + 0.25
        (0.375, 0.75)
        """
        if self.seconds_per_call is None:
            raise ValueError(
                "CostProfile.at_batch_size needs the fixed costs per call "
                f"(seconds_per_call); this profile ({self.describe()}) has "
                "none: measure it with measure_costs(..., "
                "call_batch_size='auto') at a batch size of 3 or more.")
        if (isinstance(batch_size, bool) or not isinstance(
                batch_size, numbers.Integral) or batch_size < 1):
            raise invalid_value("batch_size", "an integer >= 1", batch_size)
        batch_size = int(batch_size)
        calls = self.call_array()
        per_batch = np.maximum.accumulate(
            calls + batch_size * np.maximum(self.row_array(), 0.0))
        fitted = self.call_batch_size
        return dataclasses.replace(
            self, seconds_per_sample=tuple(per_batch / batch_size),
            seconds_per_batch=tuple(per_batch), batch_size=batch_size,
            call_batch_size=fitted if fitted is not None
            and fitted < batch_size else None)

    def mean_cost(self, exit_index):
        """Expected seconds per sample of serving samples that leave at
        `exit_index`, in batches of `batch_size`.

        Each sample pays the per-row part of its exit's cost
        (`row_array`); each stage's fixed cost per call (`seconds_per_call`)
        is paid once per batch that runs it, i.e. whenever a row of the
        batch reaches it: per sample, that cost over `batch_size` times
        the chance that a batch of `batch_size` rows drawn from these
        samples reaches the stage (`reach_probability`). When every
        sample leaves at exit `k` this is `seconds_per_sample[k]`; without
        `seconds_per_call`, or at batch 1, it is the mean of
        `seconds_per_sample` at the exits.

        Args:
            exit_index: 0-based exits, `(N,)` (one decision rule) or
                `(T, N)` (one row per rule).

        Returns:
            A float, or a `(T,)` array.

        Example:

        Batches of 2 rows; half of each exit's batch time is fixed. One
        sample of two leaves at exit 1: rows 0.375 s, fixed 0.5 s / 2 for
        stage 1 and 0.5 s / 2 for stage 2 in 3 batches of 4 (0.75).

        >>> profile = CostProfile((0.5, 1.0), (1.0, 2.0), "keras", 2,
        ...                       "0" * 16, ("a", "b"),
        ...                       seconds_per_call=(0.5, 1.0))
        >>> profile.mean_cost([0, 1])  # additive: mean(0.5, 1.0) = 0.75
        0.8125
        >>> profile.mean_cost([[1, 1], [0, 0]]).tolist()
        [1.0, 0.5]
        """
        index = np.asarray(exit_index)
        if index.ndim not in (1, 2) or index.shape[-1] == 0 or (
                index.dtype.kind not in "iu") or index.min() < 0 or (
                index.max() >= self.num_exits):
            raise invalid_value(
                "exit_index", f"0-based exits in [0, {self.num_exits - 1}], "
                "an (N,) or (T, N) integer array", exit_index)
        result = self.row_array()[index].mean(-1)
        if self.seconds_per_call is not None:
            reach = np.stack([(index >= k).mean(-1)
                              for k in range(self.num_exits)], -1)
            result = result + reach_probability(
                reach, self.batch_size) @ self.stage_call_array() / (
                self.batch_size)
        return float(result) if result.ndim == 0 else result

    def describe(self):
        """One line: runtime, batch size, device (axis labels, reports)."""
        device = f", {self.device}" if self.device else ""
        return f"measured: {self.runtime}, batch {self.batch_size}{device}"

    def check_model(self, source, argument="cost"):
        """Refuses a model or outputs this profile was not measured on.

        Args:
            source: a `MultiExitModel` or an `ExitOutputs`.
            argument: the argument named in the message.

        Raises:
            ValueError: one line naming both models.
        """
        names = tuple(source.exit_names)
        signature = model_signature(source)
        if names != self.exit_names or signature != self.model_signature:
            name = getattr(source, "name", None)
            theirs = f"{name!r} " if isinstance(name, str) else ""
            raise ValueError(
                f"Invalid value received for argument `{argument}`. "
                "Expected a cost profile measured on this model "
                f"({theirs}signature {signature}, {len(names)} exits). "
                f"Received: a profile of {self.model_name!r} (signature "
                f"{self.model_signature}, {self.num_exits} exits): measure "
                "this model with keras_eexit.inference.measure_costs.")

    # --------------------------------------------------------- JSON
    def to_dict(self):
        """A JSON-serialisable dict (`from_dict` reads it back)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                **{f.name: getattr(self, f.name)
                   for f in dataclasses.fields(self)},
                "exit_names": list(self.exit_names),
                "seconds_per_sample": list(self.seconds_per_sample),
                "seconds_per_batch": list(self.seconds_per_batch),
                "seconds_per_call": (None if self.seconds_per_call is None
                                     else list(self.seconds_per_call))}

    @classmethod
    def from_dict(cls, data):
        """The profile a `to_dict` dict describes (checked)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                "Not a keras-eexit cost profile (expected a JSON object with "
                f"\"format\": \"{FORMAT}\").")
        version = data.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError("The cost profile's \"format_version\" must be "
                             "an integer.")
        if version > FORMAT_VERSION:
            raise ValueError(
                "This cost profile was written by a newer keras-eexit "
                f"(format {version}); upgrade keras-eexit.")
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise ValueError(
                f"The cost profile lacks the key(s) {missing}; a profile "
                f"holds {list(_REQUIRED_KEYS)}.")
        for key in ("seconds_per_sample", "seconds_per_batch", "exit_names",
                    "seconds_per_call"):
            if key == "seconds_per_call" and data.get(key) is None:
                continue
            if not isinstance(data[key], list):
                raise ValueError(
                    f"The cost profile's \"{key}\" must be a list (one "
                    f"value per exit); received {data[key]!r}.")
        if data.get("versions") is not None and not isinstance(
                data["versions"], dict):
            raise ValueError("The cost profile's \"versions\" must be a "
                             "JSON object.")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def save(self, path):
        """Writes the profile as JSON, atomically."""
        write_text(os.fspath(path), json.dumps(self.to_dict(), indent=2,
                                               allow_nan=False) + "\n")

    @classmethod
    def load(cls, path):
        """Reads a profile written by `save`.

        Args:
            path: the JSON file.

        Returns:
            A `CostProfile`.

        Raises:
            ValueError: one line naming the file and what is wrong (not
                JSON, not a profile, a missing key, costs that are not
                positive, non-decreasing seconds, one per exit).
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON cost profile: "
                             f"{error}") from None
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as error:
            message = error.args[0] if error.args else repr(error)
            raise ValueError(f"{path}: {message}") from None


def check_cost(cost):
    """`None` (FLOPs) or a `CostProfile`: the forms `cost=` takes.

    Args:
        cost: `None` or `"flops"` (FLOPs, the default), a `CostProfile`,
            or the path of a saved one.

    Returns:
        `None` or a `CostProfile`.
    """
    if cost is None or (isinstance(cost, str) and cost.lower() == "flops"):
        return None
    if isinstance(cost, CostProfile):
        return cost
    if isinstance(cost, (str, os.PathLike)) and str(cost).endswith(".json"):
        return CostProfile.load(cost)
    raise invalid_value(
        "cost", "None or 'flops' (FLOPs, as the papers), a CostProfile "
        "(keras_eexit.inference.measure_costs) or the path of a saved one",
        cost)


def resolve_cost(outputs, cost=None):
    """`outputs` with the cost vector `cost=` asks for, and its unit.

    With FLOPs (`None`/`"flops"`) the outputs come back unchanged (unit
    `"FLOPs"`, or `"s"` for outputs resolved before). With a
    `CostProfile` their `flops` hold the profile's seconds per sample,
    `base_flops` is None (budgets as fractions read the final exit's
    time), `flops_convention` is `"measured"` and `cost_unit` is `"s"`;
    a profile of another model is refused.

    Args:
        outputs: the `ExitOutputs` of `collect`.
        cost: see `check_cost`.

    Returns:
        `(outputs, unit)` with unit `"FLOPs"` or `"s"`.
    """
    profile = check_cost(cost)
    if profile is None:
        return outputs, getattr(outputs, "cost_unit", FLOPS)
    if getattr(outputs, "cost_unit", FLOPS) == SECONDS and not getattr(
            outputs, "costs", None):
        raise ValueError(
            "Invalid value received for argument `cost`. Expected it once: "
            "these outputs already carry measured costs. Received: "
            f"cost={profile.describe()}")
    if getattr(outputs, "params", None) is not None:
        profile.check_model(outputs)
    elif len(outputs.exit_names) != profile.num_exits:
        profile.check_model(outputs)
    return dataclasses.replace(
        outputs, flops=profile.cost_array(), base_flops=None,
        flops_convention="measured", cost_unit=SECONDS), SECONDS


def resolve_cost_vector(flops, num_exits, cost=None):
    """The cost vector for array inputs: `flops`, or the profile's seconds.

    For functions that take arrays rather than `ExitOutputs` (no model to
    check the profile against: only the number of exits is checked).

    Args:
        flops: `(K,)` cumulative FLOPs, or None with a profile.
        num_exits: K.
        cost: see `check_cost`.

    Returns:
        `(costs, unit)`.
    """
    profile = check_cost(cost)
    if profile is None:
        return flops, FLOPS
    if profile.num_exits != num_exits:
        raise ValueError(
            "Invalid value received for argument `cost`. Expected a cost "
            f"profile of {num_exits} exits. Received: a profile of "
            f"{profile.num_exits} exits ({profile.model_name!r})")
    return profile.cost_array(), SECONDS


def mean_costs(costs, exit_index, cost=None):
    """Mean cost per sample of each decision rule's exits.

    The mean of `costs` at the exits taken; with a `CostProfile` that
    has `seconds_per_call`, its `mean_cost` (each stage's fixed cost per
    call charged to the batches that run it).

    Args:
        costs: `(K,)` cumulative costs per exit (FLOPs or seconds).
        exit_index: `(T, N)` 0-based exits (one row per rule) or `(N,)`.
        cost: None, or the `CostProfile` `costs` came from.

    Returns:
        A `(T,)` float64 array (a float for `(N,)` exits).
    """
    profile = check_cost(cost)
    if profile is not None and profile.seconds_per_call is not None:
        return profile.mean_cost(exit_index)
    result = np.asarray(costs, np.float64)[np.asarray(exit_index)].mean(-1)
    return float(result) if result.ndim == 0 else result


def check_budget_value(budget, costs, unit=FLOPS):
    """A budget as a float: finite and at least the first exit's cost.

    Args:
        budget: mean cost per sample, in `unit`.
        costs: `(K,)` cumulative costs per exit.
        unit: `"FLOPs"` or `"s"` (named in the message).

    Returns:
        `float(budget)`.
    """
    first = float(np.asarray(costs, np.float64).reshape(-1)[0])
    if isinstance(budget, bool) or not isinstance(
            budget, (numbers.Real, np.number)) or not math.isfinite(
            budget) or budget < first:
        what = ("seconds per sample" if unit == SECONDS
                else "FLOPs per sample")
        raise invalid_value(
            "budget", f"mean {what} of at least the first exit's cost "
            f"({format_cost(first, unit)})", budget)
    return float(budget)
