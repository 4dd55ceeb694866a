"""`ExperimentConfig`: everything one training run depends on, checked once."""

import dataclasses

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value

# The defaults of `keras-eexit train` and `compare` (one set for both).
# Measured over 3 seeds on small_cnn / digits, joint (docs/cli.md): exit 1
# learns (about 0.6) with Adam 3e-3 and batches of 32, while Adam 1e-3,
# batches of 64 and a cosine decay left it at chance (0.09-0.12).
DEFAULT_EPOCHS = 12
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 3e-3
DEFAULT_SCHEDULE = "constant"
SCHEDULES = ("constant", "cosine", "multistep")
DEFAULT_OPTIMIZER = "adam"
OPTIMIZERS = ("adam", "adamw", "sgd")

# `--model auto`: the zoo model for each embedded data set.
DEFAULT_MODELS = {"digits": "small_cnn", "mnist1d": "cnn1d"}
FALLBACK_MODEL = "cifar_resnet"

# Joint losses that need a damping unit on every head.
DAMPING_LOSSES = ("damping", "power_sqrt")


@dataclasses.dataclass(frozen=True)
class Convergence:
    """Run every phase until a monitored metric stops improving.

    For a named regime and a validation metric `"val_<metric>"` (without
    `min_delta`) each phase watches `val_exit_k_<metric>` of every exit it
    trains and ends when all of them have stalled, restoring its best
    weights: the papers' early stopping (`regimes.registry.
    converged_regime`); the budget split's phase lengths are then the
    maxima unless `max_epochs` is given. Otherwise every phase watches
    `monitor` itself (`regimes.registry.until_convergence`).

    Args:
        patience: epochs without improvement before a phase ends.
        max_epochs: the most epochs of one phase (`None`: no limit).
        monitor: the logged metric (validation metrics need validation
            data, which the runner passes).
        min_delta: smallest change that counts as an improvement.
    """

    patience: int = 3
    max_epochs: int | None = None
    monitor: str = "val_loss"
    min_delta: float = 0.0

    def __post_init__(self):
        if isinstance(self.patience, bool) or not isinstance(
                self.patience, int) or self.patience < 0:
            raise invalid_value("patience", "an integer >= 0", self.patience)
        if self.max_epochs is not None:
            check_positive_int("max_epochs", self.max_epochs)
        if not isinstance(self.monitor, str) or not self.monitor:
            raise invalid_value("monitor", "a logged metric name",
                                self.monitor)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One training run: data, model, regime, optimiser, seed, devices.

    Every field is checked when the config is made, so a bad value fails
    before anything is loaded, built or written.

    Args:
        dataset: `"digits"`, `"mnist1d"` or a prepared TFDS name.
        data_dir: where the data set's files are (`None`: TFDS's default
            directory): a prepared TFDS directory, or for `"cifar10"` /
            `"cifar100"` the official Python archive, its folder, or a
            directory holding either (`keras_eexit.data.load`).
        model: a zoo model name, or `"auto"` (see `DEFAULT_MODELS`).
        model_params: more arguments of the zoo builder (`depth`,
            `exits`, `channels`, ...), over those the data set implies.
        regime: a registered regime name (`keras_eexit.regimes.REGIMES`).
        method: an early-exit method (`keras_eexit.methods.METHODS`:
            `"sdn"`, `"pbee"`, `"ztw"`, `"gpf"`, ...): the network the
            method builds on the zoo model, trained under the regime as the
            method trains, evaluated with its exit rule.
        regime_params: the regime's parameters; phase lengths not given are
            filled from the epoch budget (`regimes.split_budget`).
        head: the exit head type of zoo models that take one.
        epochs: the epoch budget (`None`: `DEFAULT_EPOCHS`).
        batch_size: the global batch size.
        learning_rate: the optimizer's learning rate (a number > 0).
        schedule: `"constant"`, `"cosine"` (cosine decay over the run) or
            `"multistep"` (the rate times `decay_factor` at each epoch of
            `milestones`); under a regime whose phases set their own
            rates, `"cosine"` decays each phase from its own rate over its
            own epochs (`experiments.phase_schedule`) and `"multistep"` is
            refused.
        optimizer: `"adam"` (the default), `"adamw"` or `"sgd"`
            (`keras.optimizers.Adam` / `AdamW` / `SGD`).
        momentum: SGD's momentum.
        nesterov: SGD with Nesterov momentum.
        weight_decay: the optimizer's weight decay (Keras' decoupled
            decay, `variable -= learning_rate * weight_decay * variable`;
            0: none).
        clipnorm: clip each gradient to this norm (`None`: no clipping).
        milestones: `"multistep"` only: the epochs (increasing) after
            which the rate is multiplied by `decay_factor`.
        decay_factor: `"multistep"` only: the factor at each milestone.
        augment: the training batches' augmentation (`keras_eexit.data.
            load`'s `augment`: `"flip_crop"`, `["cutmix", "mixup"]`, ...).
        num_samples: the size of generated data sets (mnist1d).
        seed: seeds weights, data order and dropout.
        deterministic: deterministic ops and data order.
        strategy: a `keras_eexit.utils.distribution.STRATEGIES` name.
        tpu: the TPU name or address for `strategy="tpu"`.
        precision: a `keras_eexit.utils.distribution.PRECISIONS` name.
        validation: evaluate the validation split after every epoch.
        convergence: a `Convergence`: every phase runs until its monitored
            metric stalls (the phase lengths become maxima).
        label: the name of the run in reports (default: `regime`).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    model: str = "auto"
    model_params: dict = dataclasses.field(default_factory=dict)
    regime: str = "joint"
    regime_params: dict = dataclasses.field(default_factory=dict)
    method: str = "sdn"
    head: str = "linear"
    epochs: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    schedule: str = DEFAULT_SCHEDULE
    optimizer: str = DEFAULT_OPTIMIZER
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    clipnorm: float | None = None
    milestones: tuple = ()
    decay_factor: float = 0.1
    augment: str | list | None = None
    num_samples: int | None = None
    seed: int = 0
    deterministic: bool = False
    strategy: str = "none"
    tpu: str | None = None
    precision: str = "float32"
    validation: bool = True
    convergence: Convergence | None = None
    label: str | None = None

    def __post_init__(self):
        from keras_eexit import models
        from keras_eexit import regimes
        from keras_eexit.utils import distribution

        for name in ("dataset", "model", "regime", "head", "method"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise invalid_value(name, "a non-empty string", value)
        if self.data_dir is not None and (
                not isinstance(self.data_dir, str) or not self.data_dir):
            raise invalid_value("data_dir", "None or a directory path",
                                self.data_dir)
        if self.model != "auto":
            check_choice("model", self.model, models.MODELS)
        check_choice("regime", self.regime, regimes.REGIMES)
        from keras_eexit import methods

        methods.get_method(self.method)
        if not isinstance(self.model_params, dict):
            raise invalid_value("model_params", "a dict", self.model_params)
        if not isinstance(self.regime_params, dict):
            raise invalid_value("regime_params", "a dict",
                                self.regime_params)
        if self.epochs is not None:
            check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        self._check_optimizer()
        if self.num_samples is not None:
            check_positive_int("num_samples", self.num_samples)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise invalid_value("seed", "an integer", self.seed)
        check_choice("strategy", self.strategy, distribution.STRATEGIES)
        check_choice("precision", self.precision, distribution.PRECISIONS)
        if self.convergence is not None and not isinstance(
                self.convergence, Convergence):
            raise invalid_value("convergence", "a Convergence or None",
                                self.convergence)
        # Bad regime parameters fail now, not after the data are loaded.
        regimes.regime_for_budget(self.regime, self.budget, 3,
                                  **{**self.regime_params,
                                     "verbose": False})

    def _check_optimizer(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        if not isinstance(self.nesterov, bool):
            raise invalid_value("nesterov", "a bool", self.nesterov)
        if self.optimizer != "sgd" and (self.momentum or self.nesterov):
            raise invalid_value("momentum", "0 (and nesterov=False) unless "
                                "optimizer='sgd'", self.momentum)
        check_number("weight_decay", self.weight_decay, 0.0)
        if self.clipnorm is not None:
            check_number("clipnorm", self.clipnorm, 0.0, low_open=True)
        milestones = list(self.milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1
               for m in milestones) or milestones != sorted(set(milestones)):
            raise invalid_value("milestones", "increasing epochs >= 1",
                                self.milestones)
        if milestones and self.schedule != "multistep":
            raise invalid_value("milestones", "() unless schedule="
                                "'multistep'", self.milestones)
        check_number("decay_factor", self.decay_factor, 0.0, 1.0,
                     low_open=True)
        if self.augment is not None:
            from keras_eexit.data.augment import parse_augment

            parse_augment(self.augment)

    # ----------------------------------------------------------- derived
    @property
    def budget(self):
        """The epoch budget: `epochs`, or `DEFAULT_EPOCHS`."""
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    @property
    def model_name(self):
        """The zoo model trained (`"auto"` resolved for the data set)."""
        if self.model != "auto":
            return self.model
        return DEFAULT_MODELS.get(self.dataset, FALLBACK_MODEL)

    @property
    def damping(self):
        """Whether the model needs damping heads (a damping loss)."""
        return self.regime_params.get("loss") in DAMPING_LOSSES

    @property
    def name(self):
        """The run's name in reports."""
        return self.label or self.regime

    def describe(self):
        """One line naming every setting that shapes the result."""
        rate = describe_optimizer(self)
        params = ", ".join(f"{k}={v!r}" for k, v in
                           sorted(self.regime_params.items()))
        regime = self.regime + (f" [{params}]" if params else "")
        parts = [f"dataset {self.dataset}", f"model {self.model_name}",
                 f"regime {regime}", f"{self.budget}-epoch budget",
                 f"batch {self.batch_size}", rate, f"seed {self.seed}"]
        if self.method != "sdn":
            parts.insert(2, f"method {self.method}")
        if self.head != "linear":
            parts.append(f"head {self.head}")
        if self.strategy != "none":
            parts.append(f"strategy {self.strategy}")
        if self.precision != "float32":
            parts.append(f"precision {self.precision}")
        if self.augment is not None:
            parts.append(f"augment {self.augment}")
        if self.deterministic:
            parts.append("deterministic")
        if self.convergence is not None:
            c = self.convergence
            parts.append(f"phases until {c.monitor} stalls {c.patience} "
                         "epochs" + ("" if c.max_epochs is None
                                     else f" (at most {c.max_epochs})"))
        return ", ".join(parts)

    # ------------------------------------------------------ serialisation
    def to_dict(self):
        """A JSON-able dict (`from_dict` reads it back)."""
        values = dataclasses.asdict(self)
        values["milestones"] = list(self.milestones)
        return values

    @classmethod
    def from_dict(cls, values):
        """The config recorded by `to_dict`.

        Raises:
            ValueError: for a record that is not a config of this version.
        """
        if not isinstance(values, dict):
            raise invalid_value("config", "a dict written by to_dict",
                                values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"The recorded configuration has unknown fields {unknown}: "
                "it was written by another version of keras-eexit."
            )
        values = dict(values)
        if values.get("milestones") is not None:
            values["milestones"] = tuple(values["milestones"])
        if values.get("convergence") is not None:
            values["convergence"] = Convergence(**values["convergence"])
        return cls(**values)

    def replace(self, **changes):
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)


def describe_optimizer(config):
    """`"Adam lr 0.003"`, `"SGD lr 0.1 (momentum 0.9, cosine decay)"`..."""
    name = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}[config.optimizer]
    notes = []
    if config.momentum:
        notes.append(f"momentum {config.momentum:g}"
                     + (", Nesterov" if config.nesterov else ""))
    if config.weight_decay:
        notes.append(f"weight decay {config.weight_decay:g}")
    if config.clipnorm is not None:
        notes.append(f"clipnorm {config.clipnorm:g}")
    if config.schedule == "multistep":
        notes.append(f"x{config.decay_factor:g} after epochs "
                     f"{list(config.milestones)}")
    elif config.schedule != "constant":
        notes.append(f"{config.schedule} decay")
    text = f"{name} lr {config.learning_rate:g}"
    return text + (f" ({', '.join(notes)})" if notes else "")
