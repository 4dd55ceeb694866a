"""Adaptive inference: exit policies, calibration, batched early exit.

* `ExitPolicy` (`policy.py`): criterion + per-exit thresholds + optional
  per-exit temperatures, saved as JSON.
* `calibration.py`: thresholds and temperatures read from a VALIDATION
  split (budgeted batch classification as MSDNet, a target accuracy drop,
  temperature scaling with ECE).
* `predict_early_exit` (`predict.py`): batched early exit by compaction
  (`compaction.py`, the graph shared with the exports).
* `export_saved_model` (`saved_model.py`): the same graph as a SavedModel
  serving signature.
"""

from keras_eexit.inference.policy import ExitPolicy
from keras_eexit.inference.predict import predict_early_exit

__all__ = ["ExitPolicy", "predict_early_exit"]
