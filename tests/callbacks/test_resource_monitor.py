"""ResourceMonitor: times per epoch/phase, sampled GPU power and energy,
RAPL CPU energy, host memory per run. Every test decides whether a GPU,
pynvml or RAPL exists (fakes), so the results do not depend on the machine.
"""

import json
import sys
import time
import types

import keras
import numpy as np
import pytest

from keras_eexit.callbacks import ResourceMonitor
from keras_eexit.callbacks.resource_monitor import gpu_state
from keras_eexit.callbacks.resource_monitor import peak_host_mb


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)


@pytest.fixture
def no_rapl(tmp_path):
    return str(tmp_path / "no_powercap")


class _Phases(keras.callbacks.Callback):
    """Writes `logs["phase"]` at epoch end like a regime; sleeps a bit."""

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.05 * (epoch + 1))
        logs["phase"] = 0 if epoch < 1 else 1


@pytest.mark.parametrize("monitor_first", [True, False])
def test_epoch_and_phase_times(model_factory, tiny_data, monitor_first,
                               no_gpu, no_rapl):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    monitor = ResourceMonitor(interval=0.02, rapl_root=no_rapl)
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
    assert 10 < monitor.peak_host_mb <= peak_host_mb() + 1
    summary = json.loads(json.dumps(monitor.summary()))
    assert summary["epoch_phases"] == [0, 1, 1]
    assert summary["samples"] >= 8  # 2 per epoch boundary pair + thread
    assert summary["gpu"] == {"available": False,
                              "reason": "pynvml is not installed"}
    assert summary["cpu"]["available"] is False
    assert "RAPL is not exposed" in summary["cpu"]["reason"]
    assert monitor._thread is None  # sampling stopped with the fit


def test_gpu_unavailable_without_pynvml(no_gpu):
    assert gpu_state() == {"available": False,
                           "reason": "pynvml is not installed"}


def _fake_pynvml(state, fail_init=False):
    """An NVML whose readings come from the mutable dict `state`."""
    module = types.ModuleType("pynvml")

    def init():
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(
        used=state["memory_mb"] * 2**20)
    module.nvmlDeviceGetPowerUsage = lambda handle: state["power_w"] * 1000
    module.nvmlDeviceGetUtilizationRates = lambda handle: (
        types.SimpleNamespace(gpu=state["util"], memory=0))
    return module


def _fake_rapl(root, energy_uj, wrap=2**32):
    domain = root / "intel-rapl:0"
    (domain / "intel-rapl:0:0").mkdir(parents=True)  # a sub-domain: ignored
    (domain / "name").write_text("package-0\n")
    (domain / "max_energy_range_uj").write_text(f"{wrap}\n")
    (domain / "energy_uj").write_text(f"{energy_uj}\n")
    return domain / "energy_uj"


def test_sampled_gpu_power_energy_and_rapl_per_epoch_and_phase(
        monkeypatch, tmp_path):
    state = {"memory_mb": 500.0, "power_w": 100.0, "util": 40}
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(state))
    counter = _fake_rapl(tmp_path, energy_uj=2**32 - 1_000_000)
    monitor = ResourceMonitor(interval=0.01, rapl_root=str(tmp_path))
    monitor.on_train_begin()
    # Epoch 0 (phase 0): 100 W; the RAPL counter wraps around during it.
    monitor.on_epoch_begin(0)
    time.sleep(0.05)
    counter.write_text("4000000\n")  # +5 J across the wrap
    monitor.on_epoch_end(0, {"phase": 0})
    # Epoch 1 (phase 1): 300 W, more memory.
    state.update(power_w=300.0, memory_mb=900.0, util=90)
    monitor.on_epoch_begin(1)
    time.sleep(0.05)
    counter.write_text("7000000\n")  # +3 J
    monitor.on_epoch_end(1, {"phase": 1})
    monitor.on_train_end()
    gpu, cpu = monitor.gpu, monitor.cpu
    assert gpu["available"] and gpu["peak_power_w"] == 300.0
    assert gpu["peak_memory_mb"] == 900.0
    seconds = monitor.epoch_seconds
    # Constant power within an epoch: energy = power × duration, exactly.
    np.testing.assert_allclose(gpu["epoch_energy_j"],
                               [100 * seconds[0], 300 * seconds[1]],
                               rtol=1e-9)
    np.testing.assert_allclose(gpu["epoch_mean_power_w"], [100, 300])
    assert gpu["phase_peak_power_w"] == {0: 100.0, 1: 300.0}
    assert gpu["phase_energy_j"][1] == pytest.approx(300 * seconds[1])
    assert 100 <= gpu["mean_power_w"] <= 300
    assert cpu["available"] and cpu["domains"] == ["package-0"]
    np.testing.assert_allclose(cpu["epoch_energy_j"], [5.0, 3.0])
    assert cpu["energy_j"] == pytest.approx(8.0)
    assert cpu["phase_energy_j"] == {0: 5.0, 1: 3.0}
    json.dumps(monitor.summary())


def test_rapl_unreadable_says_so(monkeypatch, tmp_path, no_gpu):
    counter = _fake_rapl(tmp_path, 0)
    counter.chmod(0)
    monitor = ResourceMonitor(interval=0.01, rapl_root=str(tmp_path))
    monitor.on_train_begin()
    monitor.on_train_end()
    cpu = monitor.cpu
    if cpu["available"]:  # running as root: permissions do not apply
        pytest.skip("root reads any file")
    assert "not readable" in cpu["reason"]


def test_host_memory_is_per_run_not_the_process_lifetime(no_gpu, no_rapl):
    peaks = []
    for allocate in (True, False):
        monitor = ResourceMonitor(interval=0.05, rapl_root=no_rapl)
        monitor.on_train_begin()
        monitor.on_epoch_begin(0)
        block = np.ones(200 * 2**20 // 8) if allocate else None  # touched
        monitor.on_epoch_end(0, {})
        del block
        monitor.on_train_end()
        peaks.append(monitor.peak_host_mb)
    assert peaks[0] - peaks[1] > 100  # the lifetime maximum would not drop


def test_close_stops_the_thread_after_a_failed_fit(no_gpu, no_rapl):
    with ResourceMonitor(interval=0.01, rapl_root=no_rapl) as monitor:
        monitor.on_train_begin()
        thread = monitor._thread
        assert thread.is_alive()
    assert not thread.is_alive()


def test_bad_interval():
    with pytest.raises(ValueError, match="interval"):
        ResourceMonitor(interval=0)


def test_gpu_init_failure_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml",
                        _fake_pynvml({}, fail_init=True))
    state = gpu_state()
    assert state["available"] is False and "Not Found" in state["reason"]
