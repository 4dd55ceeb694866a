"""`Recipe`: one experiment of one paper, as data with its citations.

A recipe names the data set, the model, the trained variants (`Arm`: a
regime and its parameters, or an early-exit method), the optimiser and
schedule, batch size, epochs, early stopping, the per-phase learning-rate
search, the seeds, the augmentation and the evaluation, and says where each
value comes from (`Source`: a line of a paper in `shared/papers/`, the
authors' code, or our choice). `Recipe.settings(scale)` resolves it into
the dict `keras-eexit reproduce NAME --print-config` prints, and
`Recipe.configs(...)` into the `experiments.ExperimentConfig`s it trains.
"""

import dataclasses

from keras_eexit.experiments.config import Convergence
from keras_eexit.experiments.config import ExperimentConfig
from keras_eexit.utils.validation import check_choice

SCALES = ("full", "smoke")
"""`"full"`: the paper's set-up; `"smoke"`: the same recipe end to end on
local synthetic images (or MNIST-1D / digits) in minutes on a CPU."""

SMOKE_WARNING = (
    "SMOKE RUN: synthetic data, a tiny model and a few epochs. These numbers "
    "are NOT comparable with the paper's; they only show that the recipe "
    "runs end to end."
)

PAPER_KINDS = ("paper", "code", "ours")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one set-up value comes from.

    Args:
        value: the value as the recipe uses it (a number, string or list).
        kind: `"paper"` (a line of a paper's text), `"code"` (the authors'
            public code) or `"ours"` (our choice, the paper gives none).
        where: `"<paper file>:L<line>"` for `"paper"`, `"owner/repo/path"`
            for `"code"`, a reason for `"ours"`.
        text: for `"paper"`, the words of that line that state the value
            (the tests find them there).
    """

    value: object
    kind: str
    where: str
    text: str = ""

    def __post_init__(self):
        check_choice("kind", self.kind, PAPER_KINDS)

    def describe(self):
        """`"0.1 → 004_c3d7fba32766f10f.txt:L396 ("... 0.1 ...")"`."""
        if self.kind == "paper":
            return f"{self.value!r} → {self.where} (\"{self.text}\")"
        if self.kind == "code":
            return f"{self.value!r} → authors' code ({self.where})"
        return f"{self.value!r} → our choice ({self.where})"


def paper(value, where, text):
    """A `Source` on a paper's line."""
    return Source(value, "paper", where, text)


def code(value, where):
    """A `Source` in the authors' public code."""
    return Source(value, "code", where)


def ours(value, why):
    """A value the paper does not give: our choice, with the reason."""
    return Source(value, "ours", why)


@dataclasses.dataclass(frozen=True)
class Arm:
    """One trained variant of a recipe.

    Args:
        label: its name in reports (the paper's row name).
        regime: a registered regime (`keras_eexit.regimes.REGIMES`).
        regime_params: the regime's parameters (loss, λ, ρ, ...).
        method: the early-exit method (`keras_eexit.methods.METHODS`).
        lr_search: `{regime learning-rate parameter: grid}` searched on
            the validation split, phase by phase, in this order.
        paper_row: the row of the paper's table it reproduces (default:
            `label`).
    """

    label: str
    regime: str
    regime_params: dict = dataclasses.field(default_factory=dict)
    method: str = "sdn"
    lr_search: dict = dataclasses.field(default_factory=dict)
    paper_row: str | None = None

    @property
    def row(self):
        return self.paper_row or self.label


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """Numbers transcribed from a paper's table, with where they are.

    Args:
        table: `"Table 1"`.
        where: `"<paper file>:L<first>-L<last>"`.
        metric: what the numbers are (`"anytime accuracy (%)"`, ...).
        columns: the column names (`"exit_1"`... or `"25%"`...).
        rows: `{row name: (value per column)}`; values as printed
            (`"61.826 ± 0.675"` or `59.03`), `None` where the paper has no
            number.
        note: what the table does not say (seeds, protocol).
    """

    table: str
    where: str
    metric: str
    columns: tuple
    rows: dict
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Smoke:
    """How `--scale smoke` shrinks a recipe (every change is listed).

    Args:
        input_shape: the synthetic images' shape, or `(length,)` for
            token sequences (ids below `model_params["vocabulary_size"]`).
        num_classes: the synthetic classes.
        model: the zoo model (default: the recipe's).
        model_params: its builder's arguments.
        epochs: the epoch budget.
        patience: the early-stopping patience.
        seeds: the seeds run.
        grid: how many values of each learning-rate grid are tried.
        num_samples: synthetic training examples (validation and test get
            a quarter each).
        batch_size: the batch size.
    """

    input_shape: tuple = (16, 16, 3)
    num_classes: int = 4
    model: str | None = None
    model_params: dict = dataclasses.field(default_factory=dict)
    epochs: int = 2
    patience: int = 1
    seeds: tuple = (0,)
    grid: int = 1
    num_samples: int = 96
    batch_size: int = 32


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One experiment of one paper.

    Args:
        name: the recipe's registry name (`keras-eexit reproduce NAME`).
        title: one line: what it reproduces.
        paper: the paper's file in `shared/papers/`.
        experiment: the table or figure it reproduces.
        dataset: the data set (`"cifar10"`, `"cifar100"`, a TFDS name).
        input_shape: one example's shape.
        num_classes: the classes.
        model: the zoo model.
        model_params: its builder's arguments.
        arms: the trained variants (`Arm`s).
        optimizer: `{"name", "learning_rate", "momentum", "nesterov",
            "weight_decay", "clipnorm"}`.
        schedule: `{"name": "constant" | "cosine" | "multistep",
            "milestones", "decay_factor"}`.
        batch_size: the batch size.
        epochs: the epoch budget (the most epochs, with early stopping).
        early_stopping: `{"monitor", "patience", "restore_best_weights"}`
            or `None`.
        seeds: the seeds.
        augmentation: `keras_eexit.data.load`'s `augment` value, or `None`.
        validation_split: the fraction of the training set held out.
        evaluation: `"budget"` (Kubaty et al.'s 25/50/75/100%/Max table of
            the max-softmax sweep) or `"anytime"` (every exit's accuracy).
        statistics: `"anova_tukey"` where the paper tests its strategies,
            else `None`.
        sources: `{setting key: Source}` for every value above.
        paper_tables: the paper's numbers (`PaperTable`s).
        deviations: every way the code differs from the paper's set-up.
        smoke: the `Smoke` scale.
        epochs_per_phase: `epochs` caps every phase, not the whole run
            (each phase is its own training run of at most `epochs`, as in
            the authors' code); needs `early_stopping`.
    """

    name: str
    title: str
    paper: str
    experiment: str
    dataset: str
    input_shape: tuple
    num_classes: int
    model: str
    arms: tuple
    optimizer: dict
    batch_size: int
    epochs: int
    seeds: tuple
    sources: dict
    model_params: dict = dataclasses.field(default_factory=dict)
    schedule: dict = dataclasses.field(
        default_factory=lambda: {"name": "constant"})
    early_stopping: dict | None = None
    augmentation: object = None
    validation_split: float = 0.1
    evaluation: str = "budget"
    statistics: str | None = None
    paper_tables: tuple = ()
    deviations: tuple = ()
    smoke: Smoke = Smoke()
    epochs_per_phase: bool = False

    def __post_init__(self):
        if self.epochs_per_phase and self.early_stopping is None:
            raise ValueError(
                f"Recipe {self.name!r}: epochs_per_phase=True caps each "
                "phase through early stopping; give early_stopping too.")

    # ---------------------------------------------------------- resolve
    def settings(self, scale="full"):
        """The resolved set-up as one JSON-able dict (`--print-config`).

        Args:
            scale: `"full"` or `"smoke"`.

        Returns:
            A dict with the keys `recipe`, `title`, `paper`, `experiment`,
            `scale`, `dataset`, `model`, `model_params`, `regimes`,
            `methods`, `optimizer`, `schedule`, `batch_size`, `epochs`,
            `epochs_per_phase`, `early_stopping`, `lr_search`, `seeds`,
            `augmentation`, `validation_split`, `evaluation`,
            `statistics`, `sources`, `deviations` (and `warning` for a
            smoke run).
        """
        check_choice("scale", scale, SCALES)
        smoke = scale == "smoke"
        s = self.smoke
        optimizer = {"name": "adam", "learning_rate": None, "momentum": 0.0,
                     "nesterov": False, "weight_decay": 0.0,
                     "clipnorm": None, **self.optimizer}
        schedule = {"name": "constant", "milestones": [],
                    "decay_factor": 0.1, **self.schedule}
        early = None if self.early_stopping is None else {
            "monitor": "val_accuracy", "restore_best_weights": True,
            **self.early_stopping}
        lr_search = {arm.label: {k: list(v[:s.grid] if smoke else v)
                                 for k, v in arm.lr_search.items()}
                     for arm in self.arms if arm.lr_search}
        model, model_params = self.model, dict(self.model_params)
        if smoke:
            if s.model is not None:
                model = s.model
            model_params = dict(s.model_params)
            if early is not None:
                early["patience"] = s.patience
        deviations = list(self.deviations)
        if smoke:
            deviations = [
                f"smoke scale: synthetic "
                f"{'token sequences' if len(s.input_shape) == 1 else 'images'}"
                f" of shape "
                f"{list(s.input_shape)} with {s.num_classes} classes "
                f"instead of {self.dataset}",
                f"smoke scale: model {model} {model_params}",
                f"smoke scale: {s.epochs} epochs, seeds {list(s.seeds)}, "
                f"first {s.grid} value(s) of each learning-rate grid, batch "
                f"{s.batch_size}",
            ] + deviations
        out = {
            "recipe": self.name,
            "title": self.title,
            "paper": self.paper,
            "experiment": self.experiment,
            "scale": scale,
            "dataset": (("synthetic_tokens" if len(s.input_shape) == 1
                         else "synthetic_images") if smoke
                        else self.dataset),
            "input_shape": list(s.input_shape if smoke
                                else self.input_shape),
            "num_classes": s.num_classes if smoke else self.num_classes,
            "model": model,
            "model_params": model_params,
            "regimes": [{"label": a.label, "regime": a.regime,
                         "params": dict(a.regime_params)}
                        for a in self.arms],
            "methods": sorted({a.method for a in self.arms}),
            "optimizer": optimizer,
            "schedule": schedule,
            "batch_size": s.batch_size if smoke else self.batch_size,
            "epochs": s.epochs if smoke else self.epochs,
            "epochs_per_phase": self.epochs_per_phase,
            "early_stopping": early,
            "lr_search": lr_search,
            "seeds": list(s.seeds if smoke else self.seeds),
            "augmentation": self.augmentation,
            "validation_split": self.validation_split,
            "evaluation": self.evaluation,
            "statistics": self.statistics,
            "sources": {k: v.describe() for k, v in self.sources.items()},
            "deviations": deviations,
        }
        if smoke:
            out["warning"] = SMOKE_WARNING
        return out

    def config(self, arm, seed, settings, learning_rates=None,
               data_dir=None):
        """The `ExperimentConfig` of one arm and seed.

        Args:
            arm: an `Arm` of this recipe.
            seed: the seed.
            settings: `self.settings(scale)`.
            learning_rates: `{regime learning-rate parameter: value}`
                (the search's choice, or a candidate).
            data_dir: where the data set is prepared.

        Returns:
            An `ExperimentConfig`.
        """
        opt, sched = settings["optimizer"], settings["schedule"]
        early = settings["early_stopping"]
        convergence = None if early is None else Convergence(
            patience=early["patience"], monitor=early["monitor"],
            max_epochs=(settings["epochs"] if settings["epochs_per_phase"]
                        else None))
        params = {**arm.regime_params, **(learning_rates or {})}
        return ExperimentConfig(
            dataset=settings["dataset"], model=settings["model"],
            model_params=settings["model_params"], regime=arm.regime,
            regime_params=params, method=arm.method,
            epochs=settings["epochs"], batch_size=settings["batch_size"],
            learning_rate=opt["learning_rate"], schedule=sched["name"],
            optimizer=opt["name"], momentum=opt["momentum"],
            nesterov=opt["nesterov"], weight_decay=opt["weight_decay"],
            clipnorm=opt["clipnorm"],
            milestones=tuple(sched["milestones"]),
            decay_factor=sched["decay_factor"],
            augment=settings["augmentation"], data_dir=data_dir,
            seed=seed, convergence=convergence,
            # A smoke run's figures are printed in the README: the same
            # command must give the same digits (TensorFlow's op
            # determinism; a full run keeps the fast kernels).
            deterministic=settings["scale"] == "smoke",
            label=arm.label)

    def run(self, data_dir=None, out=None, scale="full", **kwargs):
        """Runs this recipe: `keras_eexit.recipes.reproduce(self, ...)`.

        Args:
            data_dir: the prepared data set's directory.
            out: the output directory.
            scale: `"full"` or `"smoke"`.
            **kwargs: `seeds`, `verbose`, `callbacks`, `log`, `report`.

        Returns:
            The summary dict of `reproduce`.
        """
        from keras_eexit.recipes.run import reproduce

        return reproduce(self, data_dir=data_dir, out=out, scale=scale,
                         **kwargs)
