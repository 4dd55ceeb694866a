"""A regime run killed mid-phase resumes with BackupAndRestore, same result."""

import os
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "resume_worker.py")


def _run(*args):
    return subprocess.run([sys.executable, WORKER, *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.large
@pytest.mark.parametrize("regime,kill,phase,earlier", [
    # Teacher snapshot must survive: killed while distilling exit 1 (a
    # teacher's resume runs in CI in-process: test_regime_checkpoints.py).
    pytest.param("distillation", 3, "phase 2/3 'distill_1'", "phase 1/3",
                 marks=pytest.mark.slow),
    # Fisher and anchors must survive: killed in EWC's second stage.
    ("ewc", 3, "phase 4/6 'stage_2'", "phase 3/6"),
])
def test_killed_run_resumes_in_phase_with_identical_weights(
        tmp_path, regime, kill, phase, earlier):
    full = _run(regime, tmp_path / "backup_full", tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr[-2000:]

    killed = _run(regime, tmp_path / "backup", tmp_path / "resumed.npz",
                  kill)
    assert killed.returncode == 3, killed.stderr[-2000:]
    assert "killed" in killed.stdout
    assert not (tmp_path / "resumed.npz").exists()

    resumed = _run(regime, tmp_path / "backup", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # The restart continues inside the phase it was killed in.
    assert phase in resumed.stdout
    assert earlier not in resumed.stdout

    a = np.load(tmp_path / "full.npz")
    b = np.load(tmp_path / "resumed.npz")
    assert len(a.files) == len(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
