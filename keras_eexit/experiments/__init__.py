"""Experiments: one configuration → a trained, evaluated model and its record.

The command line's sub-commands share this runner:

* `ExperimentConfig` (`config.py`): every setting of a run, checked once;
* `build.py`: data, model, regime (its phases fitted into the epoch budget
  by `keras_eexit.regimes.split_budget`) and optimiser from a config;
* `runner.run(config, out=None, ...)`: seed, build, `fit`, evaluate →
  `Result`;
* `record.py`: `metrics.json` of a `train` run, the comparison record of
  `evaluation.reports` for `compare`, atomic writes;
* `run_dir.py`: the resumable run directory (`run.json`, `backup/`, the
  whole history across resumes).

Example:

```python
from keras_eexit import experiments

config = experiments.ExperimentConfig(dataset="digits", regime="two_stage",
                                      epochs=12, seed=1)
result = experiments.run(config, out="runs/two_stage")
experiments.write_run(result, "runs/two_stage")
```
"""

from keras_eexit.experiments.config import DEFAULT_BATCH_SIZE
from keras_eexit.experiments.config import DEFAULT_EPOCHS
from keras_eexit.experiments.config import DEFAULT_LEARNING_RATE
from keras_eexit.experiments.config import DEFAULT_MODELS
from keras_eexit.experiments.config import DEFAULT_SCHEDULE
from keras_eexit.experiments.config import Convergence
from keras_eexit.experiments.config import ExperimentConfig
from keras_eexit.experiments.record import comparison_record
from keras_eexit.experiments.record import metrics
from keras_eexit.experiments.record import write_run
from keras_eexit.experiments.run_dir import RunDirectory
from keras_eexit.experiments.runner import Result
from keras_eexit.experiments.runner import run

__all__ = [
    "Convergence",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_MODELS",
    "DEFAULT_SCHEDULE",
    "ExperimentConfig",
    "Result",
    "RunDirectory",
    "comparison_record",
    "metrics",
    "run",
    "write_run",
]
