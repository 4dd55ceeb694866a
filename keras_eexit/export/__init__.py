"""Export to LiteRT (TFLite) with on-device early exit, and a runtime.

`export_litert(model, path, mode=...)` writes one early-exit `.tflite` (the
graph stops at the first confident exit, batch by batch with compaction; the
per-exit thresholds are a run-time input), one file per exit, or one file
per stage, plus a JSON sidecar. `LiteRTRunner(path)` loads them and returns
`(probabilities, exit_index)`. The exit rules are `keras_eexit.criteria`'s.
"""

from keras_eexit import criteria
from keras_eexit.criteria import CRITERIA
from keras_eexit.export._convert import QUANTIZATIONS
from keras_eexit.export._convert import LiteRTExportError
# Registers the "litert" runtime of keras_eexit.inference.measure_costs.
from keras_eexit.export import litert_costs  # noqa: F401
from keras_eexit.export.litert_export import MODES
from keras_eexit.export.litert_export import SIDECAR
from keras_eexit.export.litert_export import export_litert
from keras_eexit.export.litert_runner import LiteRTRunner

__all__ = [
    "CRITERIA",
    "MODES",
    "QUANTIZATIONS",
    "SIDECAR",
    "LiteRTExportError",
    "LiteRTRunner",
    "criteria",
    "export_litert",
]
