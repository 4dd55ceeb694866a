"""`GradientEquilibrium`: Li et al.'s gradient rescaling, as a step part."""

from keras_eexit.models.train_step import StepContributor


class GradientEquilibrium(StepContributor):
    """Rescales the gradients that meet at each stage output (Li et al.).

    After stage `k` (1-based) of `K`, the tensor its head reads is
    multiplied by `1 / (K - k + 1)` in the backward pass and the path on
    to deeper stages by `K - k`, so stage `k` receives the mean of its own
    exit's gradient and the deeper exits' (Li et al., ICCV 2019; the
    authors' `GradientRescaleFunction`, kalviny/IMTA `models/msdnet_ge.py`).
    Only the first tensor of a tuple state (the one heads read) is
    rescaled. A `"gradients"` contributor of the model's `TrainStep`,
    installed by `model.gradient_equilibrium = True` (which
    `Joint(gradient_equilibrium=True)` sets).

    Example:

    ```python
    model.gradient_equilibrium = True
    model.train_step_plan()  # ['1. gradients: GradientEquilibrium']
    ```
    """

    roles = ("gradients",)
    backends = ("tensorflow", "jax", "torch")

    def stage_call(self, model, call):
        from keras_eexit.layers.gradient_rescale import rescale_gradient

        num_exits = model.num_exits
        positions = {id(s): k for k, s in enumerate(model.segments)}

        def inner(layer, inputs, training):
            if call is not None:
                return call(layer, inputs, training)
            return layer(inputs, training=training)

        def scale_first(state, scale):
            if isinstance(state, (list, tuple)):
                return [rescale_gradient(state[0], scale)] + list(state[1:])
            return rescale_gradient(state, scale)

        def rescaled(layer, inputs, training):
            k = positions.get(id(layer))
            if k is None:  # a head
                return inner(layer, inputs, training)
            if k > 0:  # the path from stage k - 1 on to deeper stages
                inputs = scale_first(inputs, float(num_exits - k))
            return scale_first(inner(layer, inputs, training),
                               1.0 / (num_exits - k))

        return rescaled
