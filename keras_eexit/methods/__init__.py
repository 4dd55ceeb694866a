"""Early-exit methods of issue 17, each fitted to the chain of stages."""

from keras_eexit.methods.dfs import dfs
from keras_eexit.methods.l2w import L2W
from keras_eexit.methods.weight_prediction_network import (
    WeightPredictionNetwork)

__all__ = ["L2W", "WeightPredictionNetwork", "dfs"]
