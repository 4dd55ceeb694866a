"""ResourceMonitor: epoch and phase times, host memory, optional GPU."""

import json
import sys
import time
import types

import keras
import pytest

from keras_eexit.callbacks import ResourceMonitor
from keras_eexit.callbacks.resource_monitor import gpu_state


class _Phases(keras.callbacks.Callback):
    """Writes `logs["phase"]` at epoch end like a regime; sleeps a bit."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.05 * (epoch + 1))
        logs["phase"] = 0 if epoch < 1 else 1


@pytest.mark.parametrize("monitor_first", [True, False])
def test_epoch_and_phase_times(model_factory, tiny_data, monitor_first):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    monitor = ResourceMonitor()
    callbacks = [monitor, _Phases()] if monitor_first else [_Phases(),
                                                            monitor]
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks)
    assert len(monitor.epoch_seconds) == 3
    assert all(s > 0 for s in monitor.epoch_seconds)
    assert monitor.epoch_phases == [0, 1, 1]
    phases = monitor.phase_seconds
    assert set(phases) == {0, 1}
    assert phases[1] == pytest.approx(sum(monitor.epoch_seconds[1:]))
    if not monitor_first:  # the sleeps happen before the monitor's clock
        assert phases[1] > 0.25
    assert monitor.train_seconds >= sum(monitor.epoch_seconds)
    assert monitor.peak_host_mb > 10
    summary = json.loads(json.dumps(monitor.summary()))
    assert summary["epoch_phases"] == [0, 1, 1]


def test_gpu_unavailable_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    state = gpu_state()
    assert state == {"available": False,
                     "reason": "pynvml is not installed"}


def _fake_pynvml(used, power, fail_init=False):
    module = types.ModuleType("pynvml")

    def init():
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(
        used=used.pop(0) * 2**20)
    module.nvmlDeviceGetPowerUsage = lambda handle: power.pop(0) * 1000
    return module


def test_gpu_peaks_through_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml",
                        _fake_pynvml([500.0, 300.0], [80.0, 120.0]))
    monitor = ResourceMonitor()
    for epoch in range(2):
        monitor.on_epoch_begin(epoch)
        monitor.on_epoch_end(epoch, {})
    assert monitor.gpu["available"] is True
    assert monitor.gpu["memory_mb"] == 300.0
    assert monitor.gpu["peak_memory_mb"] == 500.0
    assert monitor.gpu["peak_power_w"] == 120.0
    monkeypatch.setitem(sys.modules, "pynvml",
                        _fake_pynvml([], [], fail_init=True))
    state = gpu_state()
    assert state["available"] is False and "Not Found" in state["reason"]
