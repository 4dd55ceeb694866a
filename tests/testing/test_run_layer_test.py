"""`run_layer_test` refuses layers that break each part of the contract."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_eexit.testing import run_layer_test

X = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
register = keras.saving.register_keras_serializable(package="contract_test")


@register
class Scale(keras.layers.Layer):
    """A correct layer: `x[:, :1] * w`, `units` outputs."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(self.units,), initializer="ones")

    def call(self, inputs):
        return inputs[:, :1] * self.w

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@register
class ForgetsConfig(Scale):
    def get_config(self):
        return keras.layers.Layer.get_config(self)


@register
class DeadWeight(Scale):
    def build(self, input_shape):
        super().build(input_shape)
        self.unused = self.add_weight(shape=(1,), initializer="ones")


@register
class Float32Math(Scale):
    # Variables read in `call` follow the compute dtype (float16 under
    # mixed_float16): added to a float32 tensor, they break.
    def call(self, inputs):
        return ops.cast(inputs[:, :1], "float32") + self.w


@register
class WrongSpec(Scale):
    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape[:-1] + (1,), dtype="float32")


def test_a_correct_layer_passes(tmp_path):
    run_layer_test(Scale, {"units": 2}, X, expected_output_shape=(2, 2),
                   expected_num_trainable_weights=1,
                   expected_num_non_trainable_weights=0, directory=tmp_path)


@pytest.mark.parametrize("cls, kwargs, match", [
    # from_config builds 3 units: the 2 weights do not fit.
    (ForgetsConfig, {"policies": (), "run_training_check": False},
     "not compatible"),
    (DeadWeight, {"policies": ()}, "unchanged"),
    (Float32Math, {"run_training_check": False}, "AddV2"),
    (WrongSpec, {"policies": (), "run_training_check": False}, "symbolic"),
])
def test_a_broken_layer_fails(cls, kwargs, match, tmp_path):
    with pytest.raises(Exception, match=match):
        run_layer_test(cls, {"units": 2}, X, directory=tmp_path, **kwargs)


def test_wrong_weight_counts_fail(tmp_path):
    with pytest.raises(AssertionError, match="1 trainable variables"):
        run_layer_test(Scale, {"units": 2}, X,
                       expected_num_trainable_weights=2, policies=(),
                       run_training_check=False, directory=tmp_path)
