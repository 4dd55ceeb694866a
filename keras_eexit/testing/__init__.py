"""Reusable checks: the layer contract (`run_layer_test`) and the model
contract (`model_contract`) every keras-eexit layer and model honours."""

from keras_eexit.testing import layer_contract
from keras_eexit.testing import model_contract
from keras_eexit.testing.layer_contract import registered_layers
from keras_eexit.testing.layer_contract import run_layer_test

__all__ = [
    "layer_contract",
    "model_contract",
    "registered_layers",
    "run_layer_test",
]
