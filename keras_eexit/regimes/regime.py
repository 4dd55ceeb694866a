"""`Phase` and `Regime`: a training regime as phases run inside one `fit`."""

import dataclasses

import keras

from keras_eexit.regimes.weights import exit_weights
from keras_eexit.utils.validation import invalid_value


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a training regime.

    Args:
        name: shown in the progress output and recorded in the logs.
        epochs: how many epochs the phase lasts; `None` lets it run until
            `fit` ends (only allowed for the last phase).
        weights: per-exit loss weights (a scheme of
            `keras_eexit.regimes.weights.exit_weights` or a list).
        learning_rate: optional learning rate assigned to the optimizer when
            the phase starts.
    """

    name: str
    epochs: int | None = None
    weights: object = "uniform"
    learning_rate: float | None = None

    def __post_init__(self):
        if self.epochs is not None and (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int)
            or self.epochs < 1
        ):
            raise invalid_value(
                "epochs", "an integer >= 1 or None", self.epochs
            )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise invalid_value(
                "learning_rate", "a positive number", self.learning_rate
            )


class Regime(keras.callbacks.Callback):
    """A training regime: phases applied in order during one `model.fit`.

    The regime is a Keras callback. When a phase starts it assigns the
    model's per-exit loss weights (a variable read by the train step, so
    nothing is retraced) and, if the phase sets one, the learning rate. The
    index of the active phase is recorded in the logs as `"phase"`, so it
    appears in `History`.

    Args:
        phases: a list of `Phase`s; only the last may have `epochs=None`.
        verbose: print the name of each phase as it starts.

    Example:

    ```python
    regime = Regime([Phase("warm", epochs=2, weights="to_final"),
                     Phase("main", epochs=8)])
    model.fit(x, y, epochs=regime.epochs, callbacks=[regime])
    ```
    """

    def __init__(self, phases, verbose=True):
        super().__init__()
        phases = list(phases)
        if not phases:
            raise invalid_value("phases", "at least one Phase", phases)
        for phase in phases[:-1]:
            if phase.epochs is None:
                raise invalid_value(
                    "phases",
                    "a fixed number of epochs for every phase but the last",
                    [p.name for p in phases],
                )
        self.phases = phases
        self.verbose = verbose
        self._bound_model = None
        self.phase_index = 0
        self.epoch_in_phase = 0

    @property
    def epochs(self):
        """Total epochs when every phase has a fixed length, else `None`."""
        if any(p.epochs is None for p in self.phases):
            return None
        return sum(p.epochs for p in self.phases)

    @property
    def phase(self):
        """The active `Phase`."""
        return self.phases[self.phase_index]

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

    def on_train_begin(self, logs=None):
        for phase in self.phases:
            exit_weights(phase.weights, self.model.num_exits)
        total = self.epochs
        planned = (self.params or {}).get("epochs")
        if total is not None and planned is not None and planned < total:
            import warnings

            warnings.warn(
                f"fit(epochs={planned}) ends before the {total} epochs this "
                f"regime needs: pass epochs={total} (regime.epochs).",
                stacklevel=2,
            )
        self.phase_index = 0
        self.epoch_in_phase = 0
        self._start_phase()

    def on_epoch_begin(self, epoch, logs=None):
        phase = self.phase
        if phase.epochs is not None and self.epoch_in_phase >= phase.epochs:
            if self.phase_index + 1 >= len(self.phases):
                self.model.stop_training = True
                return
            self.phase_index += 1
            self.epoch_in_phase = 0
            self._start_phase()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_in_phase += 1
        if logs is not None and len(self.phases) > 1:
            logs["phase"] = self.phase_index
        last = self.phase_index + 1 >= len(self.phases)
        if last and self.phase.epochs is not None and (
            self.epoch_in_phase >= self.phase.epochs
        ):
            self.model.stop_training = True

    def _start_phase(self):
        phase = self.phase
        model = self.model
        model.exit_weights.assign(exit_weights(phase.weights, model.num_exits))
        if phase.learning_rate is not None:
            model.optimizer.learning_rate.assign(phase.learning_rate)
        if self.verbose:
            epochs = "until fit ends" if phase.epochs is None else (
                f"{phase.epochs} epochs"
            )
            print(
                f"[{type(self).__name__}] phase {self.phase_index + 1}/"
                f"{len(self.phases)} '{phase.name}' ({epochs})"
            )
