"""Resource use of training: wall time, host memory, GPU memory and power."""

import resource
import sys
import time

import keras


def peak_host_mb():
    """Peak resident memory of this process so far, in MiB.

    From `resource.getrusage(RUSAGE_SELF).ru_maxrss`, which is in KiB on
    Linux and in bytes on macOS.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


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
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "pynvml is not installed"}
    try:
        pynvml.nvmlInit()
    except Exception as error:  # no driver: NVMLError and friends
        return {"available": False, "reason": f"NVML: {error}"}
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        state = {"available": True, "memory_mb": memory.used / 2**20}
        try:
            state["power_w"] = pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3
        except Exception as error:  # some boards do not report power
            state["power_w"] = None
            state["reason"] = f"power not reported: {error}"
        return state
    except Exception as error:
        return {"available": False, "reason": f"NVML: {error}"}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # nothing to release
            pass


class ResourceMonitor(keras.callbacks.Callback):
    """Wall time per epoch and per phase, peak host memory, GPU use.

    Epoch time runs from `on_epoch_begin` to `on_epoch_end` (training and
    validation of the epoch). The phase of an epoch is `logs["phase"]`,
    which a regime callback writes at the end of the epoch; the monitor
    keeps a reference to the epoch's logs and reads it when asked, so it
    may come before or after the regime in the callback list (phase 0
    without a regime). Peak host memory is the process's maximum resident
    set size (`resource.getrusage`). GPU memory in use and power draw come
    from `pynvml` at every epoch end when it is installed and a GPU is
    present (the peaks over epochs are kept); otherwise the GPU is recorded
    as unavailable, with the reason.

    Args:
        gpu_index: the NVML index of the GPU to watch.

    Attributes:
        epoch_seconds: wall time of each epoch.
        epoch_phases: the phase of each epoch.
        phase_seconds: `{phase index: seconds}`.
        train_seconds: wall time of the whole `fit` (after it ends).
        peak_host_mb: peak resident memory in MiB.
        gpu: `{"available": bool, ...}`: the latest reading, with the peak
            `peak_memory_mb` and `peak_power_w` when available.

    Example:

    ```python
    monitor = ResourceMonitor()
    model.fit(x, y, epochs=5, callbacks=[regime, monitor])
    monitor.summary()
    ```
    """

    def __init__(self, gpu_index=0):
        super().__init__()
        self.gpu_index = gpu_index
        self.epoch_seconds = []
        self._epoch_logs = []
        self.train_seconds = None
        self.peak_host_mb = 0.0
        self.gpu = {"available": False, "reason": "not measured yet"}
        self._start = None
        self._train_start = None

    @property
    def epoch_phases(self):
        return [int(logs.get("phase", 0)) for logs in self._epoch_logs]

    @property
    def phase_seconds(self):
        out = {}
        for phase, seconds in zip(self.epoch_phases, self.epoch_seconds):
            out[phase] = out.get(phase, 0.0) + seconds
        return out

    def summary(self):
        """A JSON-able dict of everything measured."""
        return {
            "epoch_seconds": list(self.epoch_seconds),
            "epoch_phases": self.epoch_phases,
            "phase_seconds": {str(k): v
                              for k, v in self.phase_seconds.items()},
            "train_seconds": self.train_seconds,
            "peak_host_mb": self.peak_host_mb,
            "gpu": dict(self.gpu),
        }

    def on_train_begin(self, logs=None):
        self._train_start = time.perf_counter()

    def on_train_end(self, logs=None):
        if self._train_start is not None:
            self.train_seconds = time.perf_counter() - self._train_start
        self.peak_host_mb = peak_host_mb()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._start is None:
            return
        self.epoch_seconds.append(time.perf_counter() - self._start)
        self._start = None
        # The same dict reaches every callback: a regime later in the list
        # adds "phase" to it after this call.
        self._epoch_logs.append(logs if logs is not None else {})
        self.peak_host_mb = peak_host_mb()
        state = gpu_state(self.gpu_index)
        if state["available"]:
            previous = self.gpu if self.gpu.get("available") else {}
            state["peak_memory_mb"] = max(
                state["memory_mb"], previous.get("peak_memory_mb", 0.0))
            powers = [p for p in (state.get("power_w"),
                                  previous.get("peak_power_w"))
                      if p is not None]
            state["peak_power_w"] = max(powers) if powers else None
        self.gpu = state
