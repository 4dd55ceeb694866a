"""The `"litert"` runtime of `keras_eexit.inference.measure_costs`.

Exports the model with `export_litert(mode="early_exit")` into a temporary
directory and times `LiteRTRunner.predict`, the call users make: the
file's `one_row` signature for one sample, the batched signature
otherwise. Registered when `keras_eexit.export` is imported (export sits
above inference in the package's layers, so inference cannot import it).
"""

import contextlib
import functools
import tempfile

from keras_eexit.export.litert_export import export_litert
from keras_eexit.export.litert_runner import LiteRTRunner
from keras_eexit.inference.cost_profile import forced_thresholds
from keras_eexit.inference.cost_profile import host_description
from keras_eexit.inference.cost_profile import library_versions
from keras_eexit.inference.cost_profile import register_runtime


@contextlib.contextmanager
def litert_calls(model, batch, criterion, num_threads=None):
    """One call per exit of the exported file, every row leaving there.

    Args:
        model: a built `MultiExitModel`.
        batch: the inputs of each call.
        criterion: the exit criterion of the exported graph.
        num_threads: the interpreter's threads (`None`: LiteRT's default).

    Returns:
        A context manager yielding `(calls, device, versions)` (see
        `keras_eexit.inference.cost_profile.register_runtime`).
    """
    with tempfile.TemporaryDirectory() as tmp:
        export_litert(model, tmp, mode="early_exit", criterion=criterion)
        runner = LiteRTRunner(tmp, num_threads=num_threads)
        calls = [functools.partial(runner.predict, batch, forced_thresholds(
            criterion, model.num_exits, k)) for k in range(model.num_exits)]
        threads = "default" if num_threads is None else num_threads
        device = (f"CPU ({host_description()}), LiteRT interpreter, "
                  f"{threads} threads")
        yield calls, device, library_versions("tensorflow", "ai_edge_litert")


register_runtime("litert", litert_calls, default_batch_size=1)
