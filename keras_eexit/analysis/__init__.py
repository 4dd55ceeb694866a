"""Kubaty et al.'s analyses of multi-exit training (§3, appendix A, D.5-D.8).

One idea per module:

- `weight_space`: a model's weights as one flat vector, and the loss of
  every exit for batches of weight vectors (no rebuild per point);
- `directions`: filter-normalised random directions (Li et al., 2018);
- `loss_landscape`: 2-D loss landscapes around a trained model;
- `weight_matching`: permutation alignment (Ainsworth et al., 2022);
- `mode_connectivity`: the plane through three models, linear paths and
  loss barriers;
- `mutual_information`: I(X; Z) per layer (Jensen and Monte-Carlo
  estimates);
- `figures`: the paper's figures;
- `report`: `write_analysis_report`, the figures with their numbers and a
  Markdown summary (what `keras-eexit analyze` writes).

Numerical rank (D.5) lives with its callback,
`keras_eexit.callbacks.numerical_rank` (`layer_ranks`), and gradient
dominance (§3.3) in `keras_eexit.callbacks.gradient_dominance`.
"""

from keras_eexit.analysis.directions import filter_normalize
from keras_eexit.analysis.directions import random_direction
from keras_eexit.analysis.figures import connectivity_plot
from keras_eexit.analysis.figures import landscape_plot
from keras_eexit.analysis.figures import layer_profile_plot
from keras_eexit.analysis.figures import path_plot
from keras_eexit.analysis.loss_landscape import LossLandscape
from keras_eexit.analysis.loss_landscape import loss_landscape
from keras_eexit.analysis.mode_connectivity import ConnectivityPlane
from keras_eexit.analysis.mode_connectivity import LinearPath
from keras_eexit.analysis.mode_connectivity import connectivity_plane
from keras_eexit.analysis.mode_connectivity import linear_path
from keras_eexit.analysis.mode_connectivity import loss_barrier
from keras_eexit.analysis.mutual_information import layer_mutual_information
from keras_eexit.analysis.mutual_information import mutual_information
from keras_eexit.analysis.report import ANALYSES
from keras_eexit.analysis.report import choose_analyses
from keras_eexit.analysis.report import write_analysis_report
from keras_eexit.analysis.weight_matching import SUPPORTED
from keras_eexit.analysis.weight_matching import align
from keras_eexit.analysis.weight_matching import apply_permutation
from keras_eexit.analysis.weight_matching import permutation_spec
from keras_eexit.analysis.weight_matching import weight_matching
from keras_eexit.analysis.weight_space import LossEvaluator
from keras_eexit.analysis.weight_space import WeightSpace
from keras_eexit.callbacks.numerical_rank import layer_ranks

__all__ = [
    "ANALYSES",
    "ConnectivityPlane",
    "LinearPath",
    "LossEvaluator",
    "LossLandscape",
    "SUPPORTED",
    "WeightSpace",
    "align",
    "apply_permutation",
    "choose_analyses",
    "connectivity_plane",
    "connectivity_plot",
    "filter_normalize",
    "landscape_plot",
    "layer_mutual_information",
    "layer_profile_plot",
    "layer_ranks",
    "linear_path",
    "loss_barrier",
    "loss_landscape",
    "mutual_information",
    "path_plot",
    "permutation_spec",
    "random_direction",
    "weight_matching",
    "write_analysis_report",
]
