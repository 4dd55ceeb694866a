"""Unshared prefixes: one independent copy of the backbone per exit."""

import copy

import keras

from keras_eexit import chain
from keras_eexit.api import register
from keras_eexit.compat import is_functional


@register
class UnsharedStage(keras.layers.Layer):
    """A stage that recomputes its exit's features from the raw input.

    The state it passes on is `[features, x]`: `features` (read by the head)
    come from this stage's own copy of the backbone prefix, and `x` is the
    input, carried so that the next stage can start from scratch. FLOPs and
    parameters counted on a chain of these are the true cost of cascading
    through independent sub-models.

    Args:
        prefix: a model mapping the input to the features of this exit.
        first: whether this is the first stage (its input is `x` itself).

    Input shape:
        `x` for the first stage, else the previous stage's `[features, x]`.

    Output shape:
        `[features, x]`.
    """

    recomputes_input = True
    """Each stage computes its features from the raw input (see
    `MultiExitModel.base_flops`)."""

    def __init__(self, prefix, first=False, **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix
        self.first = first

    def build(self, input_shape):
        if not self.prefix.built:
            shape = input_shape if self.first else input_shape[1]
            self.prefix.build(shape)
        self.built = True

    def call(self, state, training=None):
        x = state if self.first else state[1]
        return [self.prefix(x, training=training), x]

    def compute_output_spec(self, state):
        x = state if self.first else state[1]
        # A new tensor, not `x` itself: a functional model can then tell
        # this stage's output from its input.
        return [self.prefix.compute_output_spec(x),
                keras.KerasTensor(x.shape, dtype=x.dtype)]

    def get_config(self):
        config = super().get_config()
        config.update({
            "prefix": keras.saving.serialize_keras_object(self.prefix),
            "first": self.first,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserializing consumes it
        config["prefix"] = keras.saving.deserialize_keras_object(
            config["prefix"])
        return cls(**config)


def _fresh_copy(layer):
    """A new, independently initialised layer with the same config."""
    if isinstance(layer, keras.Model) and is_functional(layer):
        return keras.models.clone_model(layer)
    return layer.__class__.from_config(layer.get_config())


def unshared_prefixes(model, weights="copy"):
    """Builds a model whose exit `k` owns a private copy of segments 1..k.

    This is the model of "separate" training (Algorithm 2 of "Strategies at
    a glance"): every exit is an independent sub-model M_k = B_{1:L_k} ∪ E_k,
    nothing is shared. With `weights="copy"` (Algorithm 2 line 2: "Truncate
    backbone to L_n and attach E_n", the backbone being ImageNet-pretrained)
    each sub-model starts from the weights `model` has — a pretrained or
    warmed-up backbone and its heads; on a randomly initialised `model`
    every sub-model then starts from the same random weights. With
    `weights="fresh"` every copy is initialised anew (independent random
    starts).

    Args:
        model: a built `MultiExitModel` (any chain; tuple states allowed).
        weights: `"copy"` or `"fresh"`.

    Returns:
        A new `MultiExitModel` whose stages are `UnsharedStage`s.

    Example:

    ```python
    separate = unshared_prefixes(keras_eexit.models.small_cnn())
    separate.flops_per_exit()  # the cost of cascading through sub-models
    ```
    """
    from keras_eexit.models.multi_exit_model import MultiExitModel
    from keras_eexit.utils.validation import check_choice

    check_choice("weights", weights, ("copy", "fresh"))
    spec = model.segments[0].inputs[0]
    stages, heads, copies = [], [], []
    for k in range(model.num_exits):
        inputs = keras.Input(shape=spec.shape[1:], dtype=spec.dtype)
        state = inputs
        for segment in model.segments[: k + 1]:
            copy = _fresh_copy(segment)
            state = copy(state)
            copies.append((copy, segment))
        features = chain.head_input(state)
        prefix = keras.Model(inputs, features, name=f"prefix_{k + 1}")
        stages.append(UnsharedStage(prefix, first=(k == 0),
                                    name=f"unshared_{k + 1}"))
        heads.append(_fresh_copy(model.heads[k]))
        copies.append((heads[-1], model.heads[k]))
    result = MultiExitModel(stages, heads, exit_names=model.exit_names,
                            name=f"{model.name}_unshared")
    result.build((None,) + tuple(spec.shape[1:]))
    if weights == "copy":
        for copy, original in copies:
            copy.set_weights(original.get_weights())
    return result
