"""`UserSettings`: what the user set on a model before a regime took it over."""

import contextlib


from keras_eexit.compat import flatten_layers
from keras_eexit.utils.variables import to_numpy


class UserSettings:
    """The settings a plain `fit` expects, kept while a regime runs.

    A regime changes the model while it trains (it freezes segments and
    heads, sets exit weights, the objective and the learning rate).
    `Regime.prepare_fit` records the user's settings here and attaches
    them (`model.attach_state("user_settings", ...)`); while they are
    attached, files saved from the model (`model.save`, `save_weights`,
    `keras.callbacks.ModelCheckpoint`) hold the user's trainable flags
    (`MultiExitModel.get_config`) and exit weights
    (`MultiExitModel.save_own_variables`), never the phase's; and
    `restore` gives everything back when the regime's `fit` ends, fails
    or is interrupted.

    Args:
        model: the `MultiExitModel`, as the user left it.

    Example:

    ```python
    settings = UserSettings(model)
    model.heads[0].trainable = False
    settings.restore(model)  # every flag as it was
    ```
    """

    def __init__(self, model):
        self.trainable = trainable_flags(model)
        self.exit_weights = to_numpy(model.exit_weights)
        self.learning_rate = float_learning_rate(model.optimizer)

    def restore(self, model):
        """Gives `model` back as the user left it.

        Trainable flags (of every nested layer), exit weights, the
        compiled objective, no gradient equilibrium, the learning rate.
        """
        set_trainable_flags(self.trainable)
        model.exit_weights.assign(self.exit_weights)
        model.set_objective(model.base_objective)
        model.gradient_equilibrium = False
        if self.learning_rate is not None:
            model.optimizer.learning_rate.assign(self.learning_rate)

    @contextlib.contextmanager
    def trainable_flags_shown(self, model):
        """The user's trainable flags while the block runs, then the phase's.

        A traced train step is not affected (it captured its variables).
        """
        current = trainable_flags(model)
        set_trainable_flags(self.trainable)
        try:
            yield
        finally:
            set_trainable_flags(current)


def trainable_flags(model):
    """`(layer, trainable)` of every segment, head and layer inside them.

    Parents come before their sublayers (a layer shared by two stages is
    listed under each), so `set_trainable_flags` gives every layer its own
    flag back (Keras' `trainable` setter also sets a layer's sublayers).
    """
    return [(layer, layer.trainable)
            for stage in list(model.segments) + list(model.heads)
            for layer in flatten_layers(stage)]


def set_trainable_flags(flags):
    """Sets each layer's flag, in the order `trainable_flags` gave."""
    for layer, flag in flags:
        layer.trainable = flag


def float_learning_rate(optimizer):
    """The optimizer's learning rate if it is a number, else `None`."""
    if optimizer is None:
        return None
    # A LossScaleOptimizer (mixed_float16) delegates to its inner optimizer.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    value = inner.get_config().get("learning_rate")
    return float(value) if isinstance(value, (int, float)) else None
