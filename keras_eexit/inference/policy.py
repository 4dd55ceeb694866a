"""`ExitPolicy`: a criterion, per-exit thresholds, optional temperatures."""

import dataclasses
import json
import os

import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.utils.atomic import write_text
from keras_eexit.utils.validation import invalid_value

FORMAT = "keras-eexit-exit-policy"
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("format", "criterion", "thresholds")


def _json_type(value):
    """The JSON name of a parsed value's type (`"list"` for an array)."""
    names = {dict: "JSON object", list: "list", str: "string",
             bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def check_temperatures(temperatures, num_exits):
    """`None`, or `num_exits` finite temperatures > 0 as float32."""
    if temperatures is None:
        return None
    try:
        values = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.size == 1:
        values = np.repeat(values, num_exits)
    if values.shape != (num_exits,) or not np.all(np.isfinite(values)) or (
            np.any(values <= 0)):
        raise invalid_value(
            "temperatures", f"a positive number or {num_exits} positive "
            "numbers (one per exit)", temperatures)
    return values.astype(np.float32)


def scale_probabilities(probs, temperatures):
    """Probabilities after temperature scaling: `softmax(log p / T_k)`.

    Equal to `softmax(logits / T_k)` (the log-sum-exp of the logits is a
    constant per row), so calibration works on cached probabilities.

    Args:
        probs: `(K, N, C)` probabilities.
        temperatures: `(K,)` temperatures, or `None` (returned unchanged).

    Returns:
        `(K, N, C)` float32 probabilities.
    """
    if temperatures is None:
        return probs
    probs = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(probs) / np.asarray(temperatures,
                                            np.float64)[:, None, None]
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ExitPolicy:
    """How an early-exit model decides: criterion, thresholds, temperatures.

    A sample leaves at the first exit `k` whose score passes
    `thresholds[k]` (see `keras_eexit.criteria`); the last exit takes
    every remaining sample. With `temperatures`, exit `k`'s logits are
    divided by `temperatures[k]` before the softmax, for the decision and
    for the returned probabilities.

    Every consumer takes a policy: `sweep`-style evaluation
    (`policy.exit_indices(outputs.probs)`), `predict_early_exit(model, x,
    policy=...)`, `export_saved_model` and `export_litert`.

    Args:
        criterion: a criterion name (`keras_eexit.criteria.CRITERIA`).
        thresholds: a number (every exit) or one per exit.
        num_exits: the model's number of exits (taken from `thresholds`
            when it is a list).
        temperatures: optional number or one positive number per exit.
        metadata: optional JSON-serialisable dict (how it was calibrated).

    Example:

    ```python
    policy = ExitPolicy("max_softmax", [0.8, 0.9, 1.0])
    policy.save("policy.json")
    assert ExitPolicy.load("policy.json") == policy
    ```
    """

    criterion: str
    thresholds: tuple
    num_exits: int = None
    temperatures: tuple = None
    metadata: dict = None

    def __post_init__(self):
        criterion = criteria_lib.get(self.criterion)
        num_exits = self.num_exits
        if num_exits is None:
            if np.ndim(self.thresholds) != 1:
                raise invalid_value(
                    "num_exits", "the number of exits when `thresholds` is "
                    "one number", None)
            num_exits = len(self.thresholds)
        if (isinstance(num_exits, bool) or not isinstance(
                num_exits, (int, np.integer)) or num_exits < 1):
            raise invalid_value("num_exits", "an integer >= 1", num_exits)
        given = self.thresholds
        if not criterion.per_exit and np.ndim(given) == 1 and len(
                set(np.asarray(given, dtype=np.float64).tolist())) == 1:
            given = given[0]
        values = criteria_lib.check_thresholds(criterion, given,
                                               int(num_exits))
        temperatures = check_temperatures(self.temperatures, int(num_exits))
        object.__setattr__(self, "criterion", criterion.name)
        object.__setattr__(self, "num_exits", int(num_exits))
        object.__setattr__(self, "thresholds",
                           tuple(float(v) for v in values))
        object.__setattr__(self, "temperatures", None if temperatures is None
                           else tuple(float(v) for v in temperatures))
        object.__setattr__(self, "metadata", dict(self.metadata or {}))

    def __eq__(self, other):
        return isinstance(other, ExitPolicy) and self.to_dict() == (
            other.to_dict())

    def __hash__(self):
        return hash((self.criterion, self.thresholds, self.temperatures))

    def threshold_array(self):
        """The thresholds as a float32 array `(num_exits,)`."""
        return np.asarray(self.thresholds, dtype=np.float32)

    def temperature_array(self):
        """The temperatures as float32 `(num_exits,)` (ones when unset)."""
        if self.temperatures is None:
            return np.ones(self.num_exits, dtype=np.float32)
        return np.asarray(self.temperatures, dtype=np.float32)

    def probabilities(self, probs):
        """`(K, N, C)` probabilities as the policy sees them (scaled)."""
        self._check_exits(probs)
        return scale_probabilities(probs, self.temperatures)

    def exit_indices(self, probs):
        """The 0-based exit of each sample, `(N,)`, from all exits' probs."""
        probs = self.probabilities(probs)
        return criteria_lib.exit_indices(probs, self.criterion,
                                         self.threshold_array()[None])[0]

    def evaluate(self, outputs, cost=None):
        """Accuracy, mean cost and exit ratios on an `ExitOutputs`.

        Args:
            outputs: the `ExitOutputs` of `collect`.
            cost: `None` (FLOPs) or a `CostProfile` of the model (mean
                measured seconds per sample).

        Returns:
            A `keras_eexit.evaluation.Sweep` with one point (its
            `cost_unit` says FLOPs or seconds).
        """
        import dataclasses

        from keras_eexit.evaluation import threshold_sweep
        from keras_eexit.evaluation.cost import resolve_cost

        outputs, unit = resolve_cost(outputs, cost)
        probs = self.probabilities(outputs.probs)
        result = threshold_sweep(probs, outputs.labels, outputs.flops,
                                 criterion=self.criterion,
                                 thresholds=self.threshold_array()[None],
                                 cost=cost)
        return dataclasses.replace(result, cost_unit=unit)

    def _check_exits(self, probs):
        if np.shape(probs)[0] != self.num_exits:
            raise ValueError(
                f"The policy has {self.num_exits} exits; the outputs have "
                f"{np.shape(probs)[0]}.")

    # --------------------------------------------------------- JSON
    def to_dict(self):
        """A JSON-serialisable dict (`from_dict` reads it back)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "criterion": self.criterion,
            "thresholds": list(self.thresholds),
            "temperatures": (None if self.temperatures is None
                             else list(self.temperatures)),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data):
        """The policy a `to_dict` dict describes (checked)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                "Not a keras-eexit exit policy (expected a JSON object with "
                f"\"format\": \"{FORMAT}\").")
        version = data.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(
                "The exit policy's \"format_version\" must be an integer; "
                f"received a {_json_type(version)}.")
        if version > FORMAT_VERSION:
            raise ValueError(
                "This exit policy was written by a newer keras-eexit "
                f"(format {data['format_version']}); upgrade keras-eexit.")
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise ValueError(
                f"The exit policy lacks the key(s) {missing}: a policy "
                f"holds {list(_REQUIRED_KEYS)} (and optionally "
                "\"temperatures\", \"metadata\").")
        thresholds = data["thresholds"]
        if not isinstance(thresholds, list) or not thresholds or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for v in thresholds):
            raise ValueError(
                "The exit policy's \"thresholds\" must be a non-empty list "
                "of numbers, one per exit; received a "
                f"{_json_type(thresholds)}: {thresholds!r}.")
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError(
                "The exit policy's \"metadata\" must be a JSON object "
                f"(or null); received a {_json_type(metadata)}.")
        return cls(data["criterion"], thresholds,
                   temperatures=data.get("temperatures"),
                   metadata=metadata)

    def save(self, path):
        """Writes the policy as JSON (atomically). Thresholds round-trip
        exactly (float32 values are printed with full precision)."""
        write_text(os.fspath(path), json.dumps(self.to_dict(), indent=2,
                                               allow_nan=False) + "\n")

    @classmethod
    def load(cls, path):
        """Reads a policy written by `save`.

        Args:
            path: the JSON file.

        Returns:
            An `ExitPolicy`.

        Raises:
            ValueError: a file that is not JSON or not a valid policy (the
                message names the file and the key at fault).
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON exit policy: "
                             f"{error}") from None
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError) as error:
            message = error.args[0] if error.args else repr(error)
            raise ValueError(f"{path}: {message}") from None


def as_policy(model_exits, thresholds=None, criterion="max_softmax",
              temperatures=None, policy=None):
    """The `ExitPolicy` an inference call describes (one way or the other).

    Args:
        model_exits: the model's number of exits.
        thresholds, criterion, temperatures: as `ExitPolicy`.
        policy: an `ExitPolicy` (then the others must be left unset).

    Returns:
        An `ExitPolicy` with `model_exits` exits.
    """
    if policy is not None:
        if thresholds is not None or temperatures is not None:
            raise ValueError(
                "Pass either `policy=` or `thresholds=`/`temperatures=`, "
                "not both.")
        if not isinstance(policy, ExitPolicy):
            raise invalid_value("policy", "an ExitPolicy",
                                type(policy).__name__)
        if policy.num_exits != model_exits:
            raise ValueError(
                f"The policy has {policy.num_exits} exits; the model has "
                f"{model_exits}.")
        return policy
    if thresholds is None:
        thresholds = criteria_lib.get(criterion).default
    return ExitPolicy(criterion, thresholds, num_exits=model_exits,
                      temperatures=temperatures)

