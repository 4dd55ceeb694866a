"""`WeightPredictionNetwork`: L2W's network from per-exit losses to weights."""

import math

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

CENTERINGS = ("exits", "samples", "all")
"""What L2W's weights average to 1 over: each sample's weights over the
exits (`"exits"`, the authors' `constraint_dimension=col`, CIFAR), each
exit's weights over the batch (`"samples"`, their `row`), or the whole
batch-by-exit matrix (`"all"`, their `mat`, ImageNet)."""

_AXES = {"exits": 1, "samples": 0, "all": None}

INITIALIZERS = ("torch", "glorot")
"""How the WPN's `Dense` layers start: `"torch"`, PyTorch's `nn.Linear`
default (kernel and bias uniform in `±1/sqrt(fan_in)`), which the authors'
`MLP_tanh` keeps; or `"glorot"`, Keras' default (Glorot-uniform kernel,
zero bias)."""


def centred_weights(raw, epsilon, centering="exits"):
    """L2W's sample weights `1 + ε · (t − mean t)` from raw scores `t`.

    Han et al. (2022), as in their released training scripts: the WPN's
    tanh outputs are centred so that the weights average to 1 over the
    chosen axis (the loss scale does not drift), then scaled by ε, so each
    weight lies in `[1 − 2ε, 1 + 2ε]`.

    Args:
        raw: tensor `(batch, num_exits)` of scores in `[-1, 1]`.
        epsilon: ε > 0 (0.8 on CIFAR, 0.3 on ImageNet in the authors'
            commands).
        centering: one of `CENTERINGS`.

    Returns:
        A float32 tensor `(batch, num_exits)`.

    Example:

    >>> w = centred_weights([[1.0, -1.0]], 0.5)
    >>> [float(v) for v in w[0]]
    [1.5, 0.5]
    """
    check_choice("centering", centering, CENTERINGS)
    raw = ops.cast(raw, "float32")
    axis = _AXES[centering]
    mean = ops.mean(raw, axis=axis, keepdims=axis is not None)
    return 1.0 + epsilon * (raw - mean)


@register
class WeightPredictionNetwork(keras.layers.Layer):
    """The weight prediction network (WPN) of L2W (Han et al., ECCV 2022).

    An MLP from the K per-exit losses of a sample to K scores in
    `(-1, 1)`: `num_layers` hidden `Dense` layers with ReLU, then a `Dense`
    of K units and tanh (the authors' `MLP_tanh`, input type `"loss"`).
    `keras_eexit.methods.L2W` turns the scores into sample weights with
    `centred_weights` and meta-learns the network.

    The network runs only while training: it is not part of the multi-exit
    model, its outputs or its FLOPs. Its layers start as the authors' do,
    from PyTorch's `nn.Linear` initialisation (`initializer="torch"`);
    Keras' Glorot/zero start (`"glorot"`) gives about half the initial
    spread of weights with 500 hidden units.

    Args:
        num_exits: K, the number of exits (inputs and outputs).
        hidden_units: width of the hidden layers (500 in every released
            command).
        num_layers: number of hidden layers (>= 1; 1 in every released
            command).
        initializer: one of `INITIALIZERS` (`"torch"`, the authors').
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: per-exit losses, `(batch, num_exits)`.

    Input shape:
        2D tensor `(batch_size, num_exits)`.

    Output shape:
        2D tensor `(batch_size, num_exits)`, values in `(-1, 1)`.

    Example:

    ```python
    wpn = WeightPredictionNetwork(num_exits=4, hidden_units=32)
    wpn(keras.ops.ones((2, 4))).shape  # (2, 4)
    ```

    References:
        - Han, Pu, Lai, Wang, Song, Cao, Huang, Deng, Huang. Learning to
            Weight Samples for Dynamic Early-exiting Networks. ECCV 2022;
            github.com/LeapLabTHU/L2W-DEN (`models/weight_predict.py`).
    """

    def __init__(self, num_exits, hidden_units=500, num_layers=1,
                 initializer="torch", **kwargs):
        super().__init__(**kwargs)
        self.num_exits = check_positive_int("num_exits", num_exits)
        self.hidden_units = check_positive_int("hidden_units", hidden_units)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.initializer = check_choice("initializer", initializer,
                                        INITIALIZERS)
        self.hidden = [
            keras.layers.Dense(
                self.hidden_units, activation="relu", name=f"hidden_{i + 1}",
                **self._initializers(num_exits if i == 0 else hidden_units))
            for i in range(self.num_layers)
        ]
        self.scores = keras.layers.Dense(
            self.num_exits, activation="tanh", name="scores",
            **self._initializers(hidden_units))

    def _initializers(self, fan_in):
        """`Dense` initializer arguments for a layer with `fan_in` inputs."""
        if self.initializer == "glorot":
            return {}
        bound = 1.0 / math.sqrt(fan_in)
        return {
            # kaiming_uniform(a=sqrt(5)): bound sqrt(1/fan_in), as the bias.
            "kernel_initializer": keras.initializers.VarianceScaling(
                1.0 / 3.0, mode="fan_in", distribution="uniform"),
            "bias_initializer": keras.initializers.RandomUniform(-bound,
                                                                 bound),
        }

    def build(self, input_shape):
        if input_shape[-1] != self.num_exits:
            raise invalid_value(
                "inputs", f"per-exit losses of shape (batch, "
                f"{self.num_exits})", tuple(input_shape))
        shape = tuple(input_shape)
        for layer in self.hidden:
            layer.build(shape)
            shape = shape[:-1] + (self.hidden_units,)
        self.scores.build(shape)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        for layer in self.hidden:
            x = layer(x)
        return self.scores(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.num_exits,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_exits": self.num_exits,
            "hidden_units": self.hidden_units,
            "num_layers": self.num_layers,
            "initializer": self.initializer,
        })
        return config
