"""keras-eexit: early-exit (multi-exit) neural networks for Keras 3.

Example:

```python
import keras_eexit
splits = keras_eexit.data.load("digits")
model = keras_eexit.models.get_model("small_cnn", input_shape=(8, 8, 1),
                                     num_classes=10)
model.compile(optimizer="adam", metrics=["accuracy"])
model.fit(splits.train, epochs=20, callbacks=[keras_eexit.regimes.Joint()])
```
"""

# Under the `keras-eexit` command, TensorFlow is imported quietly first.
from keras_eexit.utils import native_logs as _native_logs

_native_logs.for_command_line()

from keras_eexit import analysis  # noqa: E402
from keras_eexit import callbacks  # noqa: E402
from keras_eexit import chain  # noqa: E402
from keras_eexit import criteria  # noqa: E402
from keras_eexit import data  # noqa: E402
from keras_eexit import evaluation
from keras_eexit import experiments
from keras_eexit import export
from keras_eexit import fisher
from keras_eexit import inference
from keras_eexit import layers
from keras_eexit import losses
from keras_eexit import metrics
from keras_eexit import methods
from keras_eexit import models
from keras_eexit import recipes
from keras_eexit import regimes
from keras_eexit import testing
from keras_eexit import utils
from keras_eexit.models import get_model
from keras_eexit.models import load_model
from keras_eexit.models.multi_exit_model import MultiExitModel

__version__ = "0.1.0"

__all__ = [
    "MultiExitModel",
    "analysis",
    "callbacks",
    "chain",
    "criteria",
    "data",
    "evaluation",
    "experiments",
    "export",
    "fisher",
    "get_model",
    "inference",
    "layers",
    "load_model",
    "losses",
    "methods",
    "metrics",
    "models",
    "recipes",
    "regimes",
    "testing",
    "utils",
]
