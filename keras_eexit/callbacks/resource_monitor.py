"""Resource use of training as "Strategies at a glance" measures it.

The paper (§5.1, §5.5): GPU power and memory sampled at 1 Hz with
`nvidia-smi`/`pynvml`, CPU package power through Intel RAPL and memory
through `psutil`; figures are the mean over each complete training run, and
peak power is reported for the multi-phase strategies. `ResourceMonitor`
samples in a background thread every `interval` seconds (1 s by default)
and at every epoch boundary, and reports per run, per epoch and per phase:

- wall time;
- GPU (when `pynvml` and a GPU answer): utilisation, power (mean and
  peak), memory (peak) and energy (the power samples integrated over time
  with the trapezoidal rule);
- CPU package energy and mean power from the RAPL counters in
  `/sys/class/powercap/intel-rapl:*` (the difference of the counters, so
  exact rather than sampled), when the system exposes and lets this user
  read them; otherwise the reason is recorded;
- host memory: the peak resident set size *of this run* (sampled from
  `/proc/self/statm`, or `psutil` where there is no `/proc`), not the
  process's lifetime maximum.
"""

import glob
import os
import re
import resource
import sys
import threading
import time

import keras
import numpy as np

from keras_eexit.utils.validation import invalid_value

RAPL_ROOT = "/sys/class/powercap"


def peak_host_mb():
    """Peak resident memory of this process *so far*, in MiB.

    From `resource.getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux, bytes
    on macOS): the lifetime maximum. `ResourceMonitor` reports the peak of
    each run instead (`current_host_mb`).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def current_host_mb():
    """`(resident memory of this process now in MiB, method)`.

    `/proc/self/statm` on Linux, else `psutil` if installed, else the
    lifetime peak (`ru_maxrss`, method says so).
    """
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20, "proc_statm"
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20, "psutil"
    except Exception:  # not installed, or no permission
        return peak_host_mb(), "ru_maxrss (process lifetime maximum)"


def gpu_state(index=0):
    """Memory in use (MiB) and power draw (W) of GPU `index`, via `pynvml`.

    `pynvml` is optional (not a dependency of the toolkit).

    Args:
        index: the NVML device index.

    Returns:
        `{"available": True, "memory_mb": ..., "power_w": ...}`, or
        `{"available": False, "reason": ...}` when `pynvml` is missing or no
        GPU/driver answers.
    """
    gpu = _Nvml(index)
    if not gpu.available:
        return {"available": False, "reason": gpu.reason}
    try:
        sample = gpu.read()
        state = {"available": True, "memory_mb": sample["memory_mb"],
                 "power_w": sample["power_w"]}
        if sample["power_w"] is None:
            state["reason"] = "power not reported by this board"
        return state
    finally:
        gpu.close()


class _Nvml:
    """A `pynvml` session on one device (`available`, `reason`)."""

    def __init__(self, index):
        self.available, self.reason, self._nvml = False, "", None
        try:
            import pynvml
        except ImportError:
            self.reason = "pynvml is not installed"
            return
        if pynvml is None:  # an import blocked on purpose
            self.reason = "pynvml is not installed"
            return
        try:
            pynvml.nvmlInit()
        except Exception as error:  # no driver: NVMLError and friends
            self.reason = f"NVML: {error}"
            return
        try:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as error:
            self.reason = f"NVML: {error}"
            self._shutdown(pynvml)
            return
        self._nvml, self.available = pynvml, True

    @staticmethod
    def _shutdown(pynvml):
        try:
            pynvml.nvmlShutdown()
        except Exception:  # nothing to release
            pass

    def read(self):
        nvml, handle = self._nvml, self._handle
        out = {"memory_mb": None, "power_w": None, "utilization_pct": None}
        for key, read in (
            ("memory_mb",
             lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20),
            ("power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1e3),
            ("utilization_pct",
             lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        ):
            try:
                out[key] = float(read())
            except Exception:  # some boards do not report everything
                pass
        return out

    def close(self):
        if self._nvml is not None:
            self._shutdown(self._nvml)
            self._nvml, self.available = None, False


class _Rapl:
    """CPU package energy counters (microjoules) under `root`."""

    def __init__(self, root):
        self.domains, self.available, self.reason = [], False, ""
        # Package domains only (intel-rapl:N, not the sub-domains N:M).
        paths = sorted(p for p in glob.glob(os.path.join(root, "intel-rapl:*"))
                       if re.fullmatch(r"intel-rapl:\d+", os.path.basename(p)))
        if not os.path.isdir(root) or not paths:
            self.reason = (f"RAPL is not exposed on this system ({root} has "
                           "no intel-rapl package domain): CPU power not "
                           "measured")
            return
        for path in paths:
            try:
                with open(os.path.join(path, "name"), encoding="ascii") as f:
                    name = f.read().strip()
                with open(os.path.join(path, "max_energy_range_uj"),
                          encoding="ascii") as f:
                    wrap = int(f.read())
                self._read(path)
            except PermissionError:
                self.reason = (f"RAPL counters in {root} are not readable by "
                               "this user (root only since Linux 5.10): CPU "
                               "power not measured")
                self.domains = []
                return
            except (OSError, ValueError) as error:
                self.reason = f"RAPL: {error}"
                self.domains = []
                return
            self.domains.append((name, path, wrap))
        self.available = True

    @staticmethod
    def _read(path):
        with open(os.path.join(path, "energy_uj"), encoding="ascii") as f:
            return int(f.read())

    def read(self):
        """Counter per domain (µJ), or None if a read failed."""
        try:
            return [self._read(path) for _, path, _ in self.domains]
        except (OSError, ValueError):
            return None

    def joules(self, start, end):
        """Energy between two `read()`s, counter wrap-around handled."""
        if start is None or end is None:
            return None
        total = 0
        for (_, _, wrap), a, b in zip(self.domains, start, end):
            total += b - a if b >= a else b + wrap - a
        return total / 1e6


class ResourceMonitor(keras.callbacks.Callback):
    """Time, GPU power/utilisation/memory, CPU energy and host memory.

    Samples every `interval` seconds in a daemon thread between
    `on_train_begin` and `on_train_end`, and at every epoch boundary (so
    short epochs are measured too). The phase of an epoch is
    `logs["phase"]`, which a regime callback writes at the end of the
    epoch; the monitor keeps a reference to the epoch's logs and reads it
    when asked, so it may come before or after the regime in the callback
    list (phase 0 without a regime). If `fit` raises, call `close()` (or
    use the monitor as a context manager) to stop the sampling thread.

    Args:
        interval: seconds between samples (1.0: the paper's 1 Hz).
        gpu_index: the NVML index of the GPU to watch.
        rapl_root: where the RAPL power-capping interface lives.

    Attributes:
        epoch_seconds: wall time of each epoch.
        epoch_phases: the phase of each epoch.
        phase_seconds: `{phase index: seconds}`.
        train_seconds: wall time of the whole `fit` (after it ends).
        peak_host_mb: peak resident memory of this run in MiB.
        gpu: what `summary()["gpu"]` holds.
        cpu: what `summary()["cpu"]` holds.

    Example:

    ```python
    monitor = ResourceMonitor()
    model.fit(x, y, epochs=5, callbacks=[regime, monitor])
    monitor.summary()["gpu"]["energy_j"]
    ```

    References:
        - Rahmath P et al. Strategies at a glance (§5.1, §5.5, Figs. 15-17).
    """

    def __init__(self, interval=1.0, gpu_index=0, rapl_root=RAPL_ROOT):
        super().__init__()
        if (isinstance(interval, bool) or not isinstance(
                interval, (int, float)) or not np.isfinite(interval)
                or interval <= 0):
            raise invalid_value("interval", "a positive number of seconds",
                                interval)
        self.interval = float(interval)
        self.gpu_index = gpu_index
        self.rapl_root = rapl_root
        self._reset()

    def _reset(self):
        self.epoch_seconds = []
        self._epoch_logs = []
        self._epoch_spans = []
        self._epoch_cpu = []
        self.train_seconds = None
        self._samples = []  # (t, gpu power, gpu util, gpu memory, host MiB)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._nvml = None
        self._rapl = None
        self._host_method = None
        self._start = None
        self._train_start = None
        self._epoch_rapl = None

    # -- sampling -----------------------------------------------------------

    def _sample(self, at=None):
        at = time.perf_counter() if at is None else at
        gpu = (self._nvml.read() if self._nvml is not None
               and self._nvml.available else {})
        host, self._host_method = current_host_mb()
        row = (at, gpu.get("power_w"),
               gpu.get("utilization_pct"), gpu.get("memory_mb"), host)
        with self._lock:
            self._samples.append(row)

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def close(self):
        """Stops the sampling thread and releases NVML (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not (
                threading.current_thread()):
            self._thread.join(timeout=5 * self.interval + 1)
        self._thread = None
        if self._nvml is not None:
            self._nvml.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- callback -----------------------------------------------------------

    def on_train_begin(self, logs=None):
        self.close()
        self._reset()
        self._nvml = _Nvml(self.gpu_index)
        self._rapl = _Rapl(self.rapl_root)
        self._train_start = time.perf_counter()
        self._train_rapl = self._rapl.read() if self._rapl.available else None
        self._sample(self._train_start)
        self._thread = threading.Thread(
            target=self._run, name="keras-eexit-resource-monitor",
            daemon=True)
        self._thread.start()

    def on_train_end(self, logs=None):
        if self._train_start is None:
            return
        end = time.perf_counter()
        self._sample(end)
        self.train_seconds = end - self._train_start
        self._train_rapl_end = (self._rapl.read() if self._rapl is not None
                                and self._rapl.available else None)
        self.close()

    def on_epoch_begin(self, epoch, logs=None):
        if self._train_start is None:  # driven by hand, without fit
            self.on_train_begin()
        self._start = time.perf_counter()
        self._epoch_rapl = self._rapl.read() if self._rapl.available else None
        self._sample(self._start)

    def on_epoch_end(self, epoch, logs=None):
        if self._start is None:
            return
        end = time.perf_counter()
        self._sample(end)
        self.epoch_seconds.append(end - self._start)
        self._epoch_spans.append((self._start, end))
        self._epoch_cpu.append(
            self._rapl.joules(self._epoch_rapl, self._rapl.read())
            if self._rapl.available else None)
        self._start = None
        # The same dict reaches every callback: a regime later in the list
        # adds "phase" to it after this call.
        self._epoch_logs.append(logs if logs is not None else {})

    # -- results ------------------------------------------------------------

    @property
    def epoch_phases(self):
        return [int(logs.get("phase", 0)) for logs in self._epoch_logs]

    @property
    def phase_seconds(self):
        return _by_phase(self.epoch_phases, self.epoch_seconds)

    def _rows(self):
        with self._lock:
            rows = np.array(self._samples, dtype=np.float64).reshape(-1, 5)
        # The thread stamps a sample before reading it: order by time.
        return rows[np.argsort(rows[:, 0], kind="stable")]

    @property
    def peak_host_mb(self):
        rows = self._rows()
        return float(np.nanmax(rows[:, 4])) if len(rows) else 0.0

    @property
    def gpu(self):
        return self.summary()["gpu"]

    @property
    def cpu(self):
        return self.summary()["cpu"]

    def _gpu_summary(self, rows):
        if self._nvml is None:
            return {"available": False, "reason": "not measured yet"}
        if not len(rows) or np.all(np.isnan(rows[:, 1:4])):
            return {"available": False,
                    "reason": self._nvml.reason or "no GPU reading"}
        power = rows[:, 1]
        out = {"available": True,
               "peak_memory_mb": _nanmax(rows[:, 3]),
               "mean_utilization_pct": _nanmean(rows[:, 2])}
        if np.all(np.isnan(power)):
            out["reason"] = "power not reported by this board"
            return out
        spans = [(rows[0, 0], rows[-1, 0])] + self._epoch_spans
        energies = [_energy(rows[:, 0], power, a, b) for a, b in spans]
        peaks = [_nanmax(power[(rows[:, 0] >= a) & (rows[:, 0] <= b)])
                 for a, b in spans]
        seconds = [b - a for a, b in spans]
        out.update({
            "energy_j": energies[0],
            "mean_power_w": _ratio(energies[0], seconds[0]),
            "peak_power_w": _nanmax(power),
            "epoch_energy_j": energies[1:],
            "epoch_mean_power_w": [_ratio(e, s) for e, s in
                                   zip(energies[1:], seconds[1:])],
            "epoch_peak_power_w": peaks[1:],
            "phase_energy_j": _by_phase(self.epoch_phases, energies[1:]),
            "phase_peak_power_w": _by_phase(self.epoch_phases, peaks[1:],
                                            max),
        })
        return out

    def _cpu_summary(self):
        if self._rapl is None:
            return {"available": False, "reason": "not measured yet"}
        if not self._rapl.available:
            return {"available": False, "reason": self._rapl.reason}
        end = getattr(self, "_train_rapl_end", None)
        seconds = self.train_seconds
        energy = self._rapl.joules(self._train_rapl, end) if end else None
        return {
            "available": True, "source": "RAPL",
            "domains": [name for name, _, _ in self._rapl.domains],
            "energy_j": energy,
            "mean_power_w": _ratio(energy, seconds),
            "epoch_energy_j": list(self._epoch_cpu),
            "epoch_mean_power_w": [_ratio(e, s) for e, s in
                                   zip(self._epoch_cpu, self.epoch_seconds)],
            "phase_energy_j": _by_phase(self.epoch_phases, self._epoch_cpu),
        }

    def summary(self):
        """A JSON-able dict of everything measured (see the class doc)."""
        rows = self._rows()
        return {
            "interval_s": self.interval,
            "samples": int(len(rows)),
            "epoch_seconds": list(self.epoch_seconds),
            "epoch_phases": self.epoch_phases,
            "phase_seconds": {str(k): v
                              for k, v in self.phase_seconds.items()},
            "train_seconds": self.train_seconds,
            "peak_host_mb": self.peak_host_mb,
            "host": {"peak_mb": self.peak_host_mb,
                     "method": self._host_method},
            "gpu": self._gpu_summary(rows),
            "cpu": self._cpu_summary(),
        }


def _nanmax(values):
    values = np.asarray(values, dtype=np.float64)
    return (None if values.size == 0 or np.all(np.isnan(values))
            else float(np.nanmax(values)))


def _nanmean(values):
    values = np.asarray(values, dtype=np.float64)
    return (None if values.size == 0 or np.all(np.isnan(values))
            else float(np.nanmean(values)))


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return float(numerator) / float(denominator)


def _energy(times, power, start, end):
    """∫ power dt over [start, end] (trapezoids between the samples)."""
    inside = (times >= start) & (times <= end) & ~np.isnan(power)
    t, p = times[inside], power[inside]
    if t.size < 2:
        return 0.0 if t.size else None
    return float(np.sum((p[1:] + p[:-1]) / 2 * np.diff(t)))


def _by_phase(phases, values, combine=None):
    out = {}
    for phase, value in zip(phases, values):
        if value is None:
            continue
        if phase in out:
            out[phase] = (combine(out[phase], value) if combine
                          else out[phase] + value)
        else:
            out[phase] = value
    return {int(k): v for k, v in out.items()}
