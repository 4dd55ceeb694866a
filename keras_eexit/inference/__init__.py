"""Adaptive inference: exit policies, calibration, batched early exit.

* `ExitPolicy` (`policy.py`): criterion + per-exit thresholds + optional
  per-exit temperatures, saved as JSON.
* `calibration.py`: thresholds and temperatures read from a VALIDATION
  split (budgeted batch classification as MSDNet, a target accuracy drop,
  temperature scaling with ECE, the best accuracy within a budget).
* `search_thresholds` (`threshold_search.py`): the per-exit threshold
  search behind `best_accuracy_policy`, on scores, correctness and a
  cumulative cost per exit in any unit (pure NumPy).
* `predict_early_exit` (`predict.py`): batched early exit by compaction
  (`compaction.py`, the TensorFlow graph shared with the exports;
  `compaction_host.py` on JAX, stages compiled per power-of-two
  bucket, and on PyTorch, eager).
* `export_saved_model` (`saved_model.py`): the same graph as a SavedModel
  serving signature.
* `measure_costs` (`cost_profile.py`): each exit's measured cumulative
  cost on a runtime (Keras, SavedModel, LiteRT), a `CostProfile` that
  every policy, sweep and table takes as `cost=` (budgets in seconds).
* `calibrate_latency` (`served_latency.py`): a policy chosen on the
  profile, re-chosen until the serving call itself (`keras_serving`,
  `litert_serving`), timed on validation inputs, meets the budget.
"""

from keras_eexit.evaluation.cost import CostProfile
from keras_eexit.inference.calibration import accuracy_drop_policy
from keras_eexit.inference.calibration import best_accuracy_curve
from keras_eexit.inference.calibration import best_accuracy_policy
from keras_eexit.inference.calibration import budgeted_batch_curve
from keras_eexit.inference.calibration import budgeted_batch_plot
from keras_eexit.inference.calibration import budgeted_batch_policy
from keras_eexit.inference.calibration import budgeted_batch_thresholds
from keras_eexit.inference.calibration import expected_calibration_error
from keras_eexit.inference.calibration import fit_temperatures
from keras_eexit.inference.cost_profile import measure_costs
from keras_eexit.inference.policy import ExitPolicy
from keras_eexit.inference.predict import predict_early_exit
from keras_eexit.inference.saved_model import export_saved_model
from keras_eexit.inference.served_latency import LatencyCalibration
from keras_eexit.inference.served_latency import calibrate_latency
from keras_eexit.inference.served_latency import keras_serving
from keras_eexit.inference.served_latency import litert_serving
from keras_eexit.inference.threshold_search import ThresholdSearch
from keras_eexit.inference.threshold_search import search_thresholds

__all__ = [
    "CostProfile",
    "ExitPolicy",
    "LatencyCalibration",
    "ThresholdSearch",
    "accuracy_drop_policy",
    "best_accuracy_curve",
    "best_accuracy_policy",
    "budgeted_batch_curve",
    "budgeted_batch_plot",
    "budgeted_batch_policy",
    "budgeted_batch_thresholds",
    "calibrate_latency",
    "expected_calibration_error",
    "export_saved_model",
    "fit_temperatures",
    "keras_serving",
    "litert_serving",
    "measure_costs",
    "predict_early_exit",
    "search_thresholds",
]
