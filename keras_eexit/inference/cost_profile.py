"""`measure_costs`: each exit's measured cost on a runtime, as a profile.

The profile (`keras_eexit.evaluation.cost.CostProfile`) replaces FLOPs
wherever a budget is (`cost=`): sweeps, budget tables, exit policies,
`predict_early_exit` and plots. Each runtime is measured through the call
users make: `predict_early_exit`'s compiled graph (`"keras"`), the
SavedModel's `with_thresholds` signature (`"saved_model"`) and, once
`keras_eexit.export` is imported (`import keras_eexit` does it), the
LiteRT file's signatures through `LiteRTRunner` (`"litert"`: `one_row` at
batch 1, the batched signature otherwise).
"""

import contextlib
import functools
import importlib.metadata
import os
import platform
import tempfile
import time

import keras
import numpy as np

from keras_eexit import criteria as criteria_lib
from keras_eexit.evaluation.cost import CostProfile
from keras_eexit.evaluation.cost import model_signature
from keras_eexit.inference.policy import as_policy
from keras_eexit.models.input_checks import check_finite_inputs
from keras_eexit.models.input_checks import check_input_shape
from keras_eexit.utils.batches import is_batch_stream
from keras_eexit.utils.batches import iterate_batches
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

_RUNTIMES = {}

DEFAULT_BATCH_SIZES = {"keras": 256, "saved_model": 256, "litert": 1}
"""The batch size `measure_costs` uses when none is given: batched
serving in-process and on TF Serving, one sample on a device."""


def register_runtime(name, calls, default_batch_size=1):
    """Makes a runtime measurable by `measure_costs(runtime=name)`.

    Args:
        name: the runtime's name.
        calls: a context manager factory `calls(model, batch, criterion,
            **options)` yielding `(calls, device, versions)`: one
            zero-argument function per exit that runs the runtime's
            early-exit call on `batch` with every row leaving at that exit
            (`forced_thresholds`), the device in words and `{library:
            version}`.
        default_batch_size: its batch size when `measure_costs` is given
            none.
    """
    _RUNTIMES[name] = calls
    DEFAULT_BATCH_SIZES.setdefault(name, int(default_batch_size))


def runtimes():
    """The names `measure_costs` accepts, sorted."""
    return sorted(_RUNTIMES)


def forced_thresholds(criterion, num_exits, index):
    """Thresholds at which every sample leaves at exit `index` (0-based).

    No internal exit before `index` accepts anything (the criterion's
    `never_exit`); exit `index` accepts everything (`eager_threshold`).

    Example:

    >>> forced_thresholds("max_softmax", 3, 1).tolist()
    [1.0, 0.0, 0.0]
    """
    criterion = criteria_lib.get(criterion)
    values = np.full(num_exits, criterion.eager_threshold(num_exits),
                     np.float32)
    values[:index] = criterion.never_exit(num_exits)
    return values


def library_versions(*names):
    """`{name: version}` of Python, NumPy, Keras, its backend and `names`."""
    versions = {"python": platform.python_version(),
                "numpy": np.__version__, "keras": keras.__version__,
                "keras_backend": keras.backend.backend()}
    for name in ("keras_eexit", keras.backend.backend(), *names):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(
                name.replace("_", "-"))
    return versions


def host_description():
    """The CPU in words (model name and core count)."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    return f"{model}, {os.cpu_count()} cores"


def _keras_device():
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        kind = device.platform.upper()
        name = getattr(device, "device_kind", "")
    else:
        import tensorflow as tf

        kinds = [d.device_type for d in tf.config.list_logical_devices()]
        kind = "GPU" if "GPU" in kinds else "TPU" if "TPU" in kinds else "CPU"
        name = ""
        if kind == "GPU":
            details = tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0])
            name = details.get("device_name", "")
    if kind == "CPU":
        name = host_description()
    return f"{kind} ({name})" if name else kind


@contextlib.contextmanager
def _keras_calls(model, batch, criterion):
    from keras_eexit.inference.predict import _batch_runner

    calls = []
    for k in range(model.num_exits):
        policy = as_policy(model.num_exits,
                           forced_thresholds(criterion, model.num_exits, k),
                           criterion)
        calls.append(functools.partial(_batch_runner(model, policy), batch))
    yield calls, _keras_device(), library_versions()


@contextlib.contextmanager
def _saved_model_calls(model, batch, criterion):
    import tensorflow as tf

    from keras_eexit.inference.saved_model import SIGNATURE_WITH_THRESHOLDS
    from keras_eexit.inference.saved_model import export_saved_model

    with tempfile.TemporaryDirectory() as tmp:
        path = export_saved_model(model, os.path.join(tmp, "1"),
                                  criterion=criterion)
        served = tf.saved_model.load(path)
        signature = served.signatures[SIGNATURE_WITH_THRESHOLDS]
        inputs = tf.constant(batch)

        def call(thresholds):
            out = signature(inputs=inputs, thresholds=thresholds)
            return out["exit_index"].numpy()

        calls = [functools.partial(call, tf.constant(forced_thresholds(
            criterion, model.num_exits, k))) for k in range(model.num_exits)]
        yield calls, _keras_device(), library_versions("tensorflow")


register_runtime("keras", _keras_calls, 256)
register_runtime("saved_model", _saved_model_calls, 256)


def _input_batch(model, data, batch_size, seed):
    """`batch_size` rows of inputs: `data`'s first rows, repeated if too
    few, or seeded standard-normal inputs when `data` is None."""
    shape = tuple(model.input_shape_)
    if data is None:
        rng = np.random.default_rng(seed)
        return rng.standard_normal((batch_size,) + shape).astype(
            model.input_dtype)
    if is_batch_stream(data):
        data = next(iter(iterate_batches(data)))
    if isinstance(data, (tuple, list)):
        data = data[0]
    x = np.asarray(keras.ops.convert_to_numpy(data))
    check_input_shape(x.shape, shape, "measure_costs")
    if not len(x):
        raise invalid_value("data", "at least one sample", "no samples")
    check_finite_inputs(x, use="inference")
    repeats = -(-batch_size // len(x))
    return np.concatenate([x] * repeats)[:batch_size].astype(
        model.input_dtype)


def call_batch_size_for(batch_size):
    """The second batch size `measure_costs` fits fixed costs with.

    `batch_size // 16`, at least 2 (one row would time LiteRT's `one_row`
    signature, not the batched one); None below batch 3 (at batch 1 the
    fixed cost is part of every sample's; there is no fit to make).

    Example:

    >>> call_batch_size_for(256), call_batch_size_for(8), call_batch_size_for(1)
    (16, 2, None)
    """
    return None if batch_size < 3 else max(2, batch_size // 16)


def fit_call_costs(per_batch, per_small_batch, batch_size, call_batch_size):
    """Cumulative fixed seconds per call from two batch sizes' timings.

    Per exit, the call's time is taken as linear in its rows, `T(n) =
    C + n R`, through the two points: `R = (T(B) - T(b)) / (B - b)`,
    `C = T(B) - B R`. Timing noise can make a slope negative or a fixed
    part negative or above the whole call: `R` is clamped to at least 0
    (then `C = T(B)`) and `C` to `[0, T(B)]`. Costs are cumulative (a
    later exit runs every earlier stage), so `C` is then made
    non-decreasing over exits (a running maximum; each stays at most its
    `T(B)`, which is non-decreasing).

    Args:
        per_batch: `(K,)` cumulative seconds of a call of `batch_size`
            rows, non-decreasing.
        per_small_batch: `(K,)` the same at `call_batch_size` rows.
        batch_size: B.
        call_batch_size: b, in [1, B).

    Returns:
        `(K,)` float64 cumulative fixed seconds per call.

    Example:

    Exits 1 and 2: 1 s per call, then 0.5 and 1 s per row; exit 3's
    small batch timed slower than its big one (noise): all fixed.

    >>> fit_call_costs([3.0, 5.0, 6.0], [1.5, 2.0, 6.5], 4, 1).tolist()
    [1.0, 1.0, 6.0]
    """
    big = np.asarray(per_batch, np.float64)
    small = np.maximum.accumulate(np.asarray(per_small_batch, np.float64))
    slope = np.maximum((big - small) / (batch_size - call_batch_size), 0.0)
    fixed = np.clip(big - batch_size * slope, 0.0, big)
    return np.minimum(np.maximum.accumulate(fixed), big)


def _spread(values):
    """Interquartile range over median."""
    low, median, high = np.percentile(values, [25, 50, 75])
    return (high - low) / median


def time_calls(calls, min_repeats=5, max_repeats=50, rtol=0.05,
               max_seconds=60.0, min_time=0.002):
    """Median seconds of each call, timed in turn until stable.

    Each call first runs twice untimed (tracing, compilation, caches) and
    is then repeated enough times per sample to last `min_time` (short
    calls are below the timer's noise). Samples are taken round-robin over
    the calls (one sample of each per round, so load that comes and goes
    affects all alike) until, after at least `min_repeats` rounds, every
    call's relative spread (interquartile range / median) is at most
    `rtol`, or `max_repeats` rounds or `max_seconds` have passed.

    Args:
        calls: zero-argument functions.
        min_repeats, max_repeats: the fewest and most rounds.
        rtol: the relative spread that counts as stable.
        max_seconds: a time cap on the rounds.
        min_time: the least seconds one sample lasts.

    Returns:
        `(medians, rounds, spread)`: the median seconds of one call of
        each, the rounds taken and the largest final spread.
    """
    numbers = []
    for call in calls:
        call()
        start = time.perf_counter()
        call()
        once = max(time.perf_counter() - start, 1e-7)
        numbers.append(max(1, int(np.ceil(min_time / once))))
    samples = [[] for _ in calls]
    start = time.perf_counter()
    rounds, spread = 0, float("inf")
    while rounds < max_repeats:
        for k, call in enumerate(calls):
            begin = time.perf_counter()
            for _ in range(numbers[k]):
                call()
            samples[k].append((time.perf_counter() - begin) / numbers[k])
        rounds += 1
        if rounds >= min_repeats:
            spread = max(_spread(s) for s in samples)
            if spread <= rtol or time.perf_counter() - start > max_seconds:
                break
    return [float(np.median(s)) for s in samples], rounds, float(spread)


def measure_costs(model, runtime="keras", batch_size=None, data=None,
                  criterion="max_softmax", min_repeats=5, max_repeats=50,
                  rtol=0.05, max_seconds=60.0, seed=0,
                  call_batch_size="auto", **options):
    """Measures each exit's cumulative cost on a runtime: a `CostProfile`.

    Exit `k`'s cost is the time of the runtime's own early-exit call on a
    batch of `batch_size` rows that all leave at exit `k` (thresholds that
    no earlier exit meets and exit `k` always does:
    `forced_thresholds`): stages `1..k` run on every row, with the
    decisions a served call makes, and no stage after `k` runs. Per sample
    it is that time over `batch_size`. The calls are timed round-robin
    until stable (`time_calls`: the median of the repeats, stopping when
    the relative spread is at most `rtol`, or at `max_repeats` rounds or
    `max_seconds`). A later exit runs everything an earlier one does, so
    a cumulative time measured below the previous exit's (noise, within
    the spread) is raised to it: the costs never decrease.

    A batch that mixes exits runs each stage once for the rows that reach
    it, so a stage's fixed cost per call (launching it, Python, the
    gathers between stages) is paid for fewer rows than in a batch that
    all go past it. To charge it, the same calls are also timed, in the
    same rounds, on the first `call_batch_size` rows, and each exit's
    time is split into a fixed part per call and a part per row
    (`fit_call_costs`): the profile's `seconds_per_call`, which
    `CostProfile.mean_cost` (sweeps, policies, `predict_early_exit`)
    charges to the batches that run each stage.

    Runtimes: `"keras"` (`predict_early_exit`'s compiled graph, on the
    Keras backend's device), `"saved_model"` (`export_saved_model`, its
    `with_thresholds` signature), `"litert"` (`export_litert(mode=
    "early_exit")` run by `LiteRTRunner`: the `one_row` signature at batch
    1, the batched one otherwise; `num_threads=` sets the interpreter's
    threads). The exports are written to a temporary directory.

    Args:
        model: a built `MultiExitModel`.
        runtime: `"keras"`, `"saved_model"` or `"litert"`
            (`runtimes()`).
        batch_size: rows per call (default: 256 for `"keras"` and
            `"saved_model"`, 1 for `"litert"`). Costs per sample depend on
            it: measure at the batch size you serve.
        data: inputs to time on (an array, `(x, y)`, or a data set whose
            first batch is used; repeated up to `batch_size` rows), or
            None for seeded standard-normal inputs.
        criterion: the exit criterion of the measured graph.
        min_repeats, max_repeats, rtol, max_seconds: the stopping rule
            (see `time_calls`).
        seed: seed of the generated inputs.
        call_batch_size: the second batch size of the fixed costs per
            call: `"auto"` (`batch_size // 16`, at least 2; none below
            batch 3: `call_batch_size_for`), an integer in `[1,
            batch_size)`, or None (not measured: `seconds_per_call` is
            None and every cost scales with the rows).
        **options: runtime options (`"litert"`: `num_threads`).

    Returns:
        A `CostProfile` (per-exit cumulative seconds per sample, per
        batch and, with `call_batch_size`, fixed per call; runtime, batch
        size, device, library versions, the model's name and signature).

    Example:

    ```python
    profile = measure_costs(model, runtime="keras", batch_size=256)
    profile.save("profile.json")
    sweep = threshold_sweep(collect(model, splits.test), cost=profile)
    ```
    """
    check_choice("runtime", runtime, runtimes())
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZES[runtime]
    if (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise invalid_value("batch_size", "an integer >= 1", batch_size)
    batch_size = int(batch_size)
    if isinstance(call_batch_size, str) and call_batch_size == "auto":
        call_batch_size = call_batch_size_for(batch_size)
    elif call_batch_size is not None and (
            isinstance(call_batch_size, bool)
            or not isinstance(call_batch_size, (int, np.integer))
            or not 1 <= call_batch_size < batch_size):
        raise invalid_value(
            "call_batch_size", "'auto', None or an integer in [1, "
            f"batch_size) ([1, {batch_size}))", call_batch_size)
    batch = _input_batch(model, data, batch_size, seed)
    with contextlib.ExitStack() as stack:
        calls, device, versions = stack.enter_context(
            _RUNTIMES[runtime](model, batch, criterion, **options))
        if call_batch_size is not None:
            small, _, _ = stack.enter_context(_RUNTIMES[runtime](
                model, batch[:call_batch_size], criterion, **options))
            calls = [*calls, *small]
        medians, rounds, spread = time_calls(
            calls, min_repeats, max_repeats, rtol, max_seconds)
    medians = np.asarray(medians, np.float64)
    per_batch = np.maximum.accumulate(medians[:model.num_exits])
    per_call = None
    if call_batch_size is not None:
        per_call = tuple(fit_call_costs(
            per_batch, medians[model.num_exits:], batch_size,
            int(call_batch_size)))
        call_batch_size = int(call_batch_size)
    return CostProfile(
        seconds_per_sample=tuple(per_batch / batch_size),
        seconds_per_batch=tuple(per_batch), runtime=runtime,
        batch_size=int(batch_size), model_signature=model_signature(model),
        exit_names=tuple(model.exit_names), model_name=model.name,
        device=device, versions=versions, repeats=rounds, spread=spread,
        seconds_per_call=per_call, call_batch_size=call_batch_size)
