"""`Regime`: a training regime as phases run by one callback inside `fit`."""

import warnings

import keras
import numpy as np

from keras_eexit.losses.objective import Objective
from keras_eexit.models.user_settings import UserSettings
from keras_eexit.models.user_settings import float_learning_rate
from keras_eexit.regimes.phase import Phase
from keras_eexit.regimes.signature import regime_signature
from keras_eexit.regimes.state import RegimeState
from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.utils.validation import invalid_value
from keras_eexit.utils.variables import to_numpy


class Regime(keras.callbacks.Callback):
    """A training regime: phases applied in order during ONE `model.fit`.

    When a phase starts, the regime freezes and unfreezes segments and heads
    (and rebuilds the train function, as Keras requires when the trainable
    set changes), sets the objective and the per-exit weights, the learning
    rate and gradient equilibrium, and takes a teacher snapshot if asked.
    A phase ends after its epochs or when its monitored metric stops
    improving; the last phase ends `fit`.

    The index of the active phase is logged as `"phase"` (so it is in
    `History`), and each phase's name is printed as it starts (unless
    `fit(verbose=0)`, see `verbose`). The regime's progress lives in model
    weights while `fit` runs, so `keras.callbacks.BackupAndRestore`
    resumes a killed run in the right phase (the regime moves itself
    before any `BackupAndRestore` in the callback list so that its state
    is saved up to date); a resume under a regime whose phases differ
    from the saved one's is refused, naming both. Files saved while it
    runs (`keras.callbacks.ModelCheckpoint`) hold the trainable flags and
    exit weights the user set, not the phase's.

    When another callback ends `fit` before the last phase (e.g.
    `keras.callbacks.EarlyStopping`), the regime warns, naming the phases
    that did not run, and the `History` returned by `fit` lists them as
    `history.regime_phases_skipped` (empty when every phase ran). The
    regime's own `patience` ends phases early without skipping any.

    Regimes compose: `regime_a + regime_b` runs the phases of both.

    Args:
        phases: a list of `Phase`s, or a function `f(num_exits) -> list` for
            regimes whose phases depend on the model (the list is built when
            the regime meets its model). Every phase but the last needs an
            end (fixed `epochs` or a `monitor`).
        verbose: `"auto"` (print the name of each phase as it starts,
            unless `fit(verbose=0)`), `True` (print even then) or `False`.

    Example:

    ```python
    regime = Regime([
        Phase("backbone", epochs=5, train_heads=[3], weights=[0, 0, 1]),
        Phase("heads", epochs=3, train_segments="none",
              train_heads=[1, 2], weights=[1, 1, 0]),
    ])
    model.fit(x, y, epochs=regime.epochs, callbacks=[regime])
    ```
    """

    def __init__(self, phases, verbose="auto"):
        super().__init__()
        self._builder = phases if callable(phases) else None
        self.phases = None if callable(phases) else _checked(phases)
        if not (isinstance(verbose, bool) or verbose == "auto"):
            raise invalid_value("verbose", "'auto', True or False", verbose)
        self.verbose = verbose
        self._bound_model = None
        self._applied = None
        self._installed = []
        self._run = _FitRun()

    def __add__(self, other):
        if not isinstance(other, Regime):
            return NotImplemented

        def phases(num_exits):
            return (self.phases_for(num_exits)
                    + other.phases_for(num_exits))

        verbose = (False if False in (self.verbose, other.verbose) else
                   True if self.verbose is other.verbose is True else
                   "auto")
        return Regime(phases, verbose=verbose)

    # ------------------------------------------------------------ queries
    def phases_for(self, num_exits):
        """The phases this regime runs on a model with `num_exits` exits."""
        if self._builder is None:
            return list(self.phases)
        return _checked(self._builder(num_exits))

    @property
    def epochs(self):
        """Total epochs when every phase has a fixed length, else `None`.

        For regimes whose phases depend on the number of exits this is
        known once the regime meets its model; use `epochs_for(model)`
        before that.
        """
        if self.phases is None or not all(
            p.fixed_length for p in self.phases
        ):
            return None
        return sum(p.epochs for p in self.phases)

    def epochs_for(self, model):
        """How many epochs the regime runs on `model`, at most.

        The sum of the phases' `epochs` (for a phase that stops on a
        monitored metric, its maximum), so that
        `model.fit(..., epochs=regime.epochs_for(model))` runs every phase;
        `fit` without `epochs` does the same.

        Args:
            model: a `MultiExitModel`, or its number of exits.

        Returns:
            An int, or `None` when a phase has no length of its own (it
            lasts until `fit` ends, like `Joint()`, or monitors a metric
            without a maximum): then pass `epochs` to `fit`.
        """
        num_exits = model if isinstance(model, int) else model.num_exits
        phases = self.phases_for(num_exits)
        if any(p.epochs is None for p in phases):
            return None
        return sum(p.epochs for p in phases)

    @property
    def phase_index(self):
        """Index of the active phase (0-based)."""
        state = self._state()
        return 0 if state is None else int(to_numpy(state.phase_index))

    @property
    def phase(self):
        """The active `Phase`."""
        return self.phases[self.phase_index]

    def _state(self):
        model = self._bound_model
        return None if model is None else getattr(model, "regime_state", None)

    # ------------------------------------------------------- binding/setup
    def set_model(self, model):
        from keras_eexit.models.multi_exit_model import MultiExitModel

        if not isinstance(model, MultiExitModel):
            raise ValueError(
                f"{type(self).__name__} trains a keras_eexit.MultiExitModel; "
                f"received a {type(model).__name__}."
            )
        if self._bound_model is not None and self._bound_model is not model:
            raise ValueError(
                f"This {type(self).__name__} regime is already bound to model "
                f"{self._bound_model.name!r}: create a new regime for model "
                f"{model.name!r}."
            )
        self._bound_model = model
        super().set_model(model)

    def prepare_fit(self, model, callbacks):
        """Readies `model` for this regime; called by `MultiExitModel.fit`.

        Checks the phases against the model, records what a plain `fit`
        expects of the model (trainable flags, exit weights, objective,
        learning rate) so that `release_model` can give it back, makes every
        segment and head trainable so that the optimizer is built over every
        variable a phase may train, and attaches a fresh `RegimeState`
        (which `BackupAndRestore` may then overwrite with a saved one).

        Args:
            model: the `MultiExitModel` about to be fitted.
            callbacks: the callback list given to `fit`.

        Returns:
            The callback list, with this regime moved before any
            `BackupAndRestore`.
        """
        self.set_model(model)
        if not model.built:
            raise ValueError(
                "Build the model before training it under a regime (call it "
                "on a batch or `model.build(input_shape)`), so that the "
                "optimizer can be built over every variable a phase trains."
            )
        if model.num_exits < self.min_exits:
            raise ValueError(
                f"{type(self).__name__} needs a model with at least "
                f"{self.min_exits} exits ({self.min_exits_reason}). Received: "
                f"a model with {model.num_exits} exit(s); use Joint for a "
                "single exit.")
        if self._builder is not None:
            self.phases = self.phases_for(model.num_exits)
        for phase in self.phases:
            phase.check_exits(model.num_exits)
            if not callable(phase.weights):
                exit_weights(phase.weights, model.num_exits)
        self.check_model(model)
        model.attach_state("user_settings", UserSettings(model))
        layers = list(model.segments) + list(model.heads)
        for layer in layers:
            layer.trainable = True
        optimizer = model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        # Not tracked as a sublayer (so not part of the model's variables or
        # of files saved after fit), but saved by `save_weights` during fit,
        # which walks attributes: BackupAndRestore therefore keeps it.
        state = RegimeState(
            model,
            teacher=any(p.snapshot_teacher for p in self.phases),
            best_weights=any(p.restore_best for p in self.phases),
            fisher=any(p.fisher_exit is not None for p in self.phases),
            monitors=max(len(p.monitors) for p in self.phases),
            references=[p.reference_exit for p in self.phases
                        if p.reference_exit is not None],
            signature=regime_signature(self),
        )
        state.reset()
        model.attach_state("regime_state", state)
        self._applied = None
        callbacks = list(callbacks)
        mine = callbacks.index(self)
        backups = [i for i, c in enumerate(callbacks)
                   if isinstance(c, keras.callbacks.BackupAndRestore)]
        if backups and backups[0] < mine:
            callbacks.pop(mine)
            callbacks.insert(backups[0], self)
        return callbacks

    def release_model(self):
        """Gives the model back as a plain `fit` expects it.

        Restores what `prepare_fit` recorded (trainable flags, exit weights,
        the compiled objective, the learning rate, no gradient
        equilibrium), removes the train-step contributors its phases
        installed (a method's stay), detaches the regime's state and
        rebuilds the train function if that changed what it traced.
        Called when the regime's `fit` ends, fails or is interrupted
        (`MultiExitModel.fit` calls it in a `finally`); calling it again
        does nothing.
        """
        model = self._bound_model
        settings = None if model is None else model.user_settings
        if settings is None:
            return
        settings.restore(model)
        model.attach_state("user_settings", None)
        self._remove_phase_steps(model)
        model.attach_state("regime_state", None)
        self._applied = None
        if model.optimizer is not None:
            model.refresh_train_function()

    #: The fewest exits the regime's definition makes sense with, and why.
    min_exits = 1
    min_exits_reason = ""

    def check_model(self, model):
        """Regime-specific checks of the model (subclasses override)."""

    # ------------------------------------------------------------- events
    def on_train_begin(self, logs=None):
        self._run = _FitRun()
        total = self.epochs_for(self.model)
        planned = (self.params or {}).get("epochs")
        if total is None or planned is None:
            return
        exact = all(p.fixed_length for p in self.phases)
        if exact and planned < total:
            self._run.warned_short = True
            warnings.warn(
                f"fit(epochs={planned}) ends before the {total} epochs this "
                f"regime needs: pass epochs={total} "
                "(regime.epochs_for(model)), or omit `epochs`.",
                stacklevel=2,
            )
        elif planned > total and self._talks():
            plan = " + ".join(f"{p.name} {p.epochs}" for p in self.phases)
            print(f"[{type(self).__name__}] fit(epochs={planned}) will end "
                  f"after {'' if exact else 'at most '}{total} epochs, when "
                  f"the regime's last phase ends ({plan}).")

    def on_epoch_begin(self, epoch, logs=None):
        state = self.model.regime_state
        self._run.last_epoch = epoch
        index = int(to_numpy(state.phase_index))
        start = int(to_numpy(state.phase_start))
        # Fixed-length phases end by epoch count: derived from the absolute
        # epoch, so a run resumed by BackupAndRestore lands in its phase.
        while (
            index + 1 < len(self.phases)
            and self.phases[index].fixed_length
            and epoch - start >= self.phases[index].epochs
        ):
            start += self.phases[index].epochs
            index += 1
            state.phase_index.assign(index)
            state.phase_start.assign(start)
            state.reset_wait()
        phase = self.phases[index]
        if self._applied != index:
            self._apply(phase, index, fresh=(epoch == start))
        else:
            # The feature cache moves to its next mode (a new trace key).
            self.model.train_pipeline.next_epoch()
            self.model.refresh_train_function()
        self._set_weights(phase, epoch - start, start)

    def on_epoch_end(self, epoch, logs=None):
        state = self.model.regime_state
        index = int(to_numpy(state.phase_index))
        start = int(to_numpy(state.phase_start))
        phase = self.phases[index]
        if logs is not None:
            logs["phase"] = index
        ended = phase.fixed_length and epoch + 1 - start >= phase.epochs
        if phase.fisher_exit is not None:
            state.fisher_store.finish_pass()
            state.fisher_store.anchor()
        if phase.monitor is not None:
            ended = self._monitor(phase, logs) or (
                phase.epochs is not None and epoch + 1 - start >= phase.epochs
            )
            if ended and phase.restore_best:
                state.restore_best(self.model)
        if not ended:
            return
        if phase.reference_exit is not None:
            state.snapshot_reference(self.model, phase.reference_exit)
        if index + 1 >= len(self.phases):
            self._run.finished = True
            self.model.stop_training = True
            return
        state.phase_index.assign(index + 1)
        state.phase_start.assign(epoch + 1)
        state.reset_wait()

    def on_train_end(self, logs=None):
        skipped = self._phases_not_run()
        history = getattr(self.model, "history", None)
        if history is not None and self._run.last_epoch is not None:
            history.regime_phases_skipped = [p.name for p in skipped]
        if skipped and not self._run.warned_short:
            self._warn_skipped(skipped)
        self.release_model()

    def _talks(self):
        """Whether to print phase lines (`verbose`, and fit's `verbose`)."""
        if self.verbose == "auto":
            return (self.params or {}).get("verbose", 1) != 0
        return self.verbose

    def _phases_not_run(self):
        """The phases after the last one this `fit` ran, unless it ended."""
        run = self._run
        if run.finished or run.last_phase is None:
            return []
        return self.phases[run.last_phase + 1:]

    def _warn_skipped(self, skipped):
        run = self._run
        planned = (self.params or {}).get("epochs")
        if planned is not None and run.last_epoch + 1 >= planned:
            cause = f"fit(epochs={planned}) ended"
        else:
            cause = ("a callback stopped fit (e.g. "
                     "keras.callbacks.EarlyStopping)")
        phase = self.phases[run.last_phase]
        warnings.warn(
            f"{type(self).__name__}: {cause} after epoch "
            f"{run.last_epoch + 1}, in phase {run.last_phase + 1}/"
            f"{len(self.phases)} {phase.name!r}; phases not run: "
            f"{', '.join(repr(p.name) for p in skipped)}. To end phases "
            "early, use the regime's own `patience` (docs/regimes.md, "
            "'Early stopping').")

    # ---------------------------------------------------------- internals
    def _monitor(self, phase, logs):
        """Updates early-stopping counters; returns whether the phase ends.

        With several monitored metrics the phase ends when every one has
        gone `patience` epochs without improving, and the best weights are
        saved whenever any of them improves (Kubaty et al.'s
        `EarlyStopperEarlyExit`; a metric counts as not improving unless it
        beats its best by more than `min_delta`, Keras' rule).
        """
        logs = logs or {}
        names = phase.monitors
        for name in names:
            if name not in logs:
                raise ValueError(
                    f"Phase {phase.name!r} monitors {name!r}, which is not "
                    f"in the logs. Available: {sorted(logs)} (validation "
                    "metrics need `validation_data`)."
                )
        state = self.model.regime_state
        best = to_numpy(state.best)
        wait = to_numpy(state.wait)
        first = self._fresh_monitor
        improved = False
        for i, name in enumerate(names):
            value = float(logs[name])
            larger = phase.mode == "max" or (
                phase.mode == "auto"
                and any(s in name for s in ("acc", "auc", "precision",
                                            "recall"))
            )
            sign = 1.0 if larger else -1.0
            if first or sign * (value - best[i]) > phase.min_delta:
                best[i], wait[i] = value, 0
                improved = True
            else:
                wait[i] += 1
        self._fresh_monitor = False
        state.best.assign(best)
        state.wait.assign(wait)
        if improved:
            if phase.restore_best:
                state.save_best(self.model)
            return False
        return all(int(w) >= phase.patience for w in wait[: len(names)])

    def _apply(self, phase, index, fresh):
        model = self.model
        n = model.num_exits
        for k, segment in enumerate(model.segments):
            segment.trainable = phase.trains("segments", k, n)
        for k, head in enumerate(model.heads):
            head.trainable = phase.trains("heads", k, n)
        # A term that replaces the cross-entropy (e.g. a damping loss)
        # takes the place of the default one.
        model.set_objective(
            Objective.with_terms(phase.terms, model.base_loss)
            if phase.terms else model.base_objective)
        model.gradient_equilibrium = phase.gradient_equilibrium
        self._remove_phase_steps(model)
        for contributor in self._phase_steps(phase):
            model.train_pipeline.install(contributor)
            self._installed.append(contributor)
        if phase.learning_rate is not None:
            _set_learning_rate(model.optimizer, phase.learning_rate)
        state = model.regime_state
        if fresh and phase.snapshot_teacher:
            state.snapshot_teacher(model)
        if fresh and phase.reset_optimizer:
            _reset_optimizer(model.optimizer)
        self._fresh_monitor = fresh or phase.monitor is None
        if fresh:
            state.reset_wait()
        model.refresh_train_function()
        self._applied = index
        self._run.last_phase = index
        if self._talks():
            if phase.monitor is not None:
                length = f"until {' and '.join(phase.monitors)} stall" \
                         f"{'' if len(phase.monitors) > 1 else 's'} " \
                         f"{phase.patience} " \
                         "epochs"
            elif phase.epochs is None:
                length = "until fit ends"
            else:
                length = (f"{phase.epochs} epoch"
                          + ("" if phase.epochs == 1 else "s"))
            print(f"[{type(self).__name__}] phase {index + 1}/"
                  f"{len(self.phases)} '{phase.name}' ({length})")

    def _phase_steps(self, phase):
        """The train-step contributors `phase` installs, in order.

        Its own step (`Phase(train_step=...)`, such as ZTW's ensemble
        phase), a Fisher pass, or a feature cache. They compose with a
        method's contributors (L2W) by the rules of `TrainStep`: a feature
        cache gives the batch a method's step trains on; a Fisher pass or
        a phase's own step replaces the method's step for the phase.
        """
        from keras_eexit.models.train_step import StepContributor

        if phase.train_step is not None:
            step = phase.train_step(self.model, phase)
            if not isinstance(step, StepContributor):
                raise ValueError(
                    f"Phase {phase.name!r}: its `train_step` factory must "
                    "return a keras_eexit.models.train_step.StepContributor. "
                    f"Received: {step!r}")
            return [step]
        if phase.fisher_exit is not None:
            from keras_eexit.fisher.fisher_pass import FisherPass

            return [FisherPass(self.model, phase.fisher_exit,
                               self.model.regime_state.fisher_store,
                               phase.fisher_samples)]
        if phase.cache_features:
            from keras_eexit.regimes.feature_cache import FeatureCache

            cache = FeatureCache.for_phase(self.model, phase)
            return [] if cache is None else [cache]
        return []

    def _remove_phase_steps(self, model):
        for contributor in self._installed:
            model.train_pipeline.remove(contributor)
        self._installed = []

    def _set_weights(self, phase, epoch_in_phase, start):
        model = self.model
        weights = phase.weights
        if callable(weights):
            total = phase.epochs
            if total is None:
                total = max(1, (self.params or {}).get("epochs", 1) - start)
            weights = weights(epoch_in_phase, total)
        model.exit_weights.assign(
            np.asarray(exit_weights(weights, model.num_exits))
        )


class _FitRun:
    """What one `fit` under the regime did: its last epoch and phase."""

    def __init__(self):
        self.last_epoch = None
        self.last_phase = None
        self.finished = False
        self.warned_short = False


def _set_learning_rate(optimizer, value):
    if float_learning_rate(optimizer) is None:
        raise ValueError(
            "A phase sets learning_rate, but the optimizer follows a "
            "learning-rate schedule: give the optimizer a float learning "
            "rate, or drop the phase's learning_rate."
        )
    optimizer.learning_rate.assign(value)


def _checked(phases):
    phases = list(phases)
    if not phases or not all(isinstance(p, Phase) for p in phases):
        raise invalid_value("phases", "a non-empty list of Phase", phases)
    for phase in phases[:-1]:
        if phase.epochs is None and phase.monitor is None:
            raise invalid_value(
                "phases",
                "a fixed number of epochs or a monitor for every phase "
                "but the last",
                [p.name for p in phases],
            )
    return phases


def _reset_optimizer(optimizer):
    """Zeroes the optimizer's slots and step count (not its learning rate).

    A `LossScaleOptimizer` (mixed_float16) keeps its loss scale; its inner
    optimizer is reset. When the learning rate follows a schedule, the
    step count is kept so that the schedule runs on over the whole `fit`.
    """
    if optimizer is None:
        return
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    keep_step = float_learning_rate(inner) is None
    for variable in inner.variables:
        name = variable.path.rsplit("/", 1)[-1]
        if name == "learning_rate" or (keep_step and name == "iteration"):
            continue
        variable.assign(np.zeros(variable.shape, variable.dtype))
