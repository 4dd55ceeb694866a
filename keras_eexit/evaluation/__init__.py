"""Measuring multi-exit models: per-exit outputs, accuracy and cost."""

from keras_eexit.evaluation.collect import ExitOutputs
from keras_eexit.evaluation.collect import collect
from keras_eexit.evaluation.collect import exit_table
from keras_eexit.evaluation.collect import format_table
from keras_eexit.evaluation.flops import count_flops
from keras_eexit.evaluation.flops import count_params
from keras_eexit.evaluation.flops import profiler_flops
from keras_eexit.evaluation.sweep import CRITERIA
from keras_eexit.evaluation.sweep import Sweep
from keras_eexit.evaluation.sweep import anytime_table
from keras_eexit.evaluation.sweep import budget_table
from keras_eexit.evaluation.sweep import exit_indices
from keras_eexit.evaluation.sweep import sweep
from keras_eexit.evaluation.stats import Comparison
from keras_eexit.evaluation.stats import compare
from keras_eexit.evaluation.stats import mean_std
from keras_eexit.evaluation.plots import exit_ratio_plot
from keras_eexit.evaluation.plots import tradeoff_plot
from keras_eexit.evaluation.plots import gradient_dominance_plot
from keras_eexit.evaluation.plots import training_curves_plot
