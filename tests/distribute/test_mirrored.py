"""MirroredStrategy over two logical CPUs matches one device, per regime.

Tolerance: 1e-4 on weights and per-exit losses — the two differ only in the
order of floating-point sums (each replica averages half of every global
batch, and the gradients are summed across replicas). The model has no
BatchNorm, whose statistics are per replica by design.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "mirrored_worker.py")


@pytest.mark.large
@pytest.mark.parametrize("regime", [
    # Joint trains every variable as two_stage's first phase does, and
    # per-worker regime state again (Fisher, teacher): with `-m slow`.
    pytest.param("joint", marks=pytest.mark.slow), "two_stage",
    pytest.param("sequential_ewc", marks=pytest.mark.slow),
    pytest.param("distillation", marks=pytest.mark.slow)])
def test_mirrored_matches_one_device(tmp_path, regime):
    out = tmp_path / "result.npz"
    result = subprocess.run([sys.executable, WORKER, regime, str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = np.load(out)
    np.testing.assert_allclose(data["losses_two"], data["losses_one"],
                               atol=1e-4)
    assert float(data["weight_diff"]) < 1e-4
