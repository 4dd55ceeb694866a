"""Shared helpers of the method builders (private)."""

from keras_eexit import chain
from keras_eexit.utils.validation import invalid_value


def check_model(model, method, min_exits=2, damping=False):
    """Raises unless `model` is a built multi-exit model the method fits.

    `damping=True`: the method keeps the heads as they are, so heads with a
    damping unit (the damping losses) are fine.
    """
    from keras_eexit.models.multi_exit_model import MultiExitModel

    if not isinstance(model, MultiExitModel):
        raise invalid_value("model", "a keras_eexit.MultiExitModel", model)
    if not model.built:
        raise ValueError(
            f"{method} needs a built model: call it on a batch or "
            "`model.build(input_shape)` first.")
    if model.num_exits < min_exits:
        raise ValueError(
            f"{method} needs at least {min_exits} exits; the model has "
            f"{model.num_exits}.")
    for k, head in enumerate(model.heads):
        if (chain.extra_units(head) and not damping) or chain.reads_exits(
                head):
            raise ValueError(
                f"{method} builds on plain exit heads; exit {k + 1} "
                f"({type(head).__name__}) has a damping unit or already "
                "reads earlier exits (apply a method to a model only once, "
                "and without damping heads).")


def with_heads(model, heads):
    """A new `MultiExitModel` with `model`'s segments and the given heads."""
    from keras_eexit.models.multi_exit_model import MultiExitModel

    result = MultiExitModel(model.segments, heads,
                            exit_names=model.exit_names, name=model.name)
    if not result.built:
        result.build((None,) + tuple(model.input_shape_))
    return result
