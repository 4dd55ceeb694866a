"""Measuring multi-exit models: per-exit outputs, accuracy and cost.

`threshold_sweep` (formerly `sweep`, a name that hid the module
`keras_eexit.evaluation.sweep`) sweeps exit thresholds over the outputs of
`collect`. Calling `evaluation.sweep(...)` still works for one release,
with a `DeprecationWarning`. `CRITERIA` is `keras_eexit.criteria.CRITERIA`
(criteria by name), as in `keras_eexit.export`.
"""

from keras_eexit.evaluation.collect import ExitOutputs
from keras_eexit.evaluation.cost import CostProfile
from keras_eexit.evaluation.damping_outputs import DampingOutputs
from keras_eexit.evaluation.damping_outputs import damping_outputs
from keras_eexit.evaluation.collect import collect
from keras_eexit.evaluation.collect import exit_table
from keras_eexit.evaluation.collect import format_table
from keras_eexit.models.flops import count_flops
from keras_eexit.models.flops import count_params
from keras_eexit.models.flops import profiler_flops
from keras_eexit.criteria import CRITERIA
from keras_eexit.evaluation.sweep import Sweep
from keras_eexit.evaluation.tables import anytime_table
from keras_eexit.evaluation.tables import best_within_budget
from keras_eexit.evaluation.tables import budget_table
from keras_eexit.evaluation.tables import budget_table_per_seed
from keras_eexit.evaluation.sweep import exit_indices
from keras_eexit.evaluation.sweep import threshold_sweep
from keras_eexit.evaluation.sweep import accuracy_at
from keras_eexit.evaluation.stats import Comparison
from keras_eexit.evaluation.stats import compare
from keras_eexit.evaluation.stats import mean_std
from keras_eexit.evaluation.plots import exit_ratio_plot
from keras_eexit.evaluation.plots import tradeoff_plot
from keras_eexit.evaluation.plots import significance_plot
from keras_eexit.evaluation.plots import gradient_dominance_plot
from keras_eexit.evaluation.plots import training_curves_plot
from keras_eexit.evaluation.sweep import PROB_ATOL
from keras_eexit.evaluation.tables import conservative_order
from keras_eexit.evaluation.reports import aggregate
from keras_eexit.evaluation.reports import comparison_report
from keras_eexit.evaluation.reports import csv_text
from keras_eexit.evaluation.reports import json_text
from keras_eexit.evaluation.reports import markdown_table
from keras_eexit.evaluation.reports import run_record
from keras_eexit.evaluation.reports import significance
from keras_eexit.evaluation.reports import write_comparison_report
from keras_eexit.evaluation.reports import evaluation_report
from keras_eexit.evaluation.reports import write_evaluation_report
from keras_eexit.evaluation.reports import latency_report
from keras_eexit.evaluation.reports import write_latency_report
from keras_eexit.evaluation.reports import reference_convention
from keras_eexit.evaluation.reports import reference_budgets
from keras_eexit.evaluation.dynamics import training_dynamics

__all__ = [
    "CRITERIA",
    "Comparison",
    "CostProfile",
    "DampingOutputs",
    "ExitOutputs",
    "PROB_ATOL",
    "Sweep",
    "accuracy_at",
    "aggregate",
    "anytime_table",
    "best_within_budget",
    "budget_table",
    "budget_table_per_seed",
    "collect",
    "compare",
    "comparison_report",
    "conservative_order",
    "count_flops",
    "count_params",
    "csv_text",
    "damping_outputs",
    "evaluation_report",
    "exit_indices",
    "exit_ratio_plot",
    "exit_table",
    "format_table",
    "gradient_dominance_plot",
    "json_text",
    "latency_report",
    "markdown_table",
    "mean_std",
    "profiler_flops",
    "reference_budgets",
    "reference_convention",
    "run_record",
    "significance",
    "significance_plot",
    "threshold_sweep",
    "tradeoff_plot",
    "training_curves_plot",
    "training_dynamics",
    "write_comparison_report",
    "write_evaluation_report",
    "write_latency_report",
]
