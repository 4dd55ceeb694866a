"""Early-exit methods of issue 17, each fitted to the chain of stages.

A method changes the network (new exit heads over the same segments) and,
where needed, how any regime trains it (its phases rewritten); every
regime, exit criterion, sweep, batched early exit and export then works
with it. See `docs/methods.md`.

| method | network | training | exit rule |
|---|---|---|---|
| `sdn` | plain heads | the regime's | max-softmax |
| `pbee` | plain heads | depth-weighted losses | patience |
| `ztw` | cascading heads + ensembles | the regime, then the ensembles | max-softmax |
| `gpf` | past/future heads | depth-weighted losses + imitation | max-softmax |
| `l2w` | plain heads | meta-learned sample weights (a step override) | max-softmax |
| `dfs` | partitioned features (gradient routing only) | the regime's | max-softmax |
| `dfs_reroute` | as `dfs`; an exit's gradient reaches all its channels | the regime's | max-softmax |
"""

from keras_eexit.methods.depth_weights import depth_weighted
from keras_eexit.methods.dfs import dfs
from keras_eexit.methods.dfs import dfs_reroute
from keras_eexit.methods.gpf import gpf
from keras_eexit.methods.gpf import gpf_regime
from keras_eexit.methods.l2w import L2W
from keras_eexit.methods.l2w import l2w
from keras_eexit.methods.method_regime import MethodRegime
from keras_eexit.methods.pbee import pbee
from keras_eexit.methods.pbee import pbee_regime
from keras_eexit.methods.registry import METHODS
from keras_eexit.methods.registry import Method
from keras_eexit.methods.registry import get_method
from keras_eexit.methods.sdn import sdn
from keras_eexit.methods.ztw import ztw
from keras_eexit.methods.ztw import ztw_regime
from keras_eexit.methods.weight_prediction_network import (
    WeightPredictionNetwork)
from keras_eexit.methods.ztw_ensemble_step import ZTWEnsembleStep

__all__ = [
    "L2W",
    "METHODS",
    "Method",
    "MethodRegime",
    "WeightPredictionNetwork",
    "ZTWEnsembleStep",
    "depth_weighted",
    "dfs",
    "dfs_reroute",
    "get_method",
    "gpf",
    "gpf_regime",
    "l2w",
    "pbee",
    "pbee_regime",
    "sdn",
    "ztw",
    "ztw_regime",
]
