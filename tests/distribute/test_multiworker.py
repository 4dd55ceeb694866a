"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

Keras 3.15 `fit` fails under several workers (keras-team/keras#20585);
`MultiExitModel` routes around the two failing code paths (see
`MultiExitModel._maybe_symbolic_build`). Both workers must end with
identical weights, equal (1e-5) to one process training on the same global
batches: the two differ only in the order of floating-point sums.

Regime state is per process: under SequentialRegime with EWC each worker
measures the Fisher on its own shard, and under TwoStage each worker caches the
features of its own shard for the heads phase. The EWC penalty is linear in
F and gradients are averaged over workers, so training matches the Fisher of
the global data (equal shards); the comparison with one process checks both.
"""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "multiworker_worker.py")
TIMEOUT = 900  # ceiling per attempt (a hung pair), not a speed claim
ATTEMPTS = 2  # a fresh pair of ports if the first pair was taken meanwhile


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_workers(tmp_path, attempt, regime):
    ports = [str(_free_port()), str(_free_port())]
    outs = [tmp_path / f"a{attempt}_w{i}.npz" for i in range(2)]
    paths = [tmp_path / f"a{attempt}_w{i}.log" for i in range(2)]
    logs = [open(path, "w") for path in paths]
    processes = []
    try:
        for i in range(2):
            processes.append(subprocess.Popen(
                [sys.executable, WORKER, str(i), *ports, str(outs[i]),
                 regime],
                stdout=logs[i], stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=TIMEOUT) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        for log in logs:
            log.close()
    return codes, outs, [path.read_text()[-2000:] for path in paths]


@pytest.mark.large
@pytest.mark.parametrize("regime", [
    # Joint trains every variable as two_stage's first phase does, and
    # per-worker regime state again (Fisher, teacher): with `-m slow`.
    pytest.param("joint", marks=pytest.mark.slow), "two_stage",
    pytest.param("sequential_ewc", marks=pytest.mark.slow),
    pytest.param("distillation", marks=pytest.mark.slow)])
def test_two_workers_finish_with_identical_weights(tmp_path, regime):
    for attempt in range(ATTEMPTS):
        codes, outs, text = _run_workers(tmp_path, attempt, regime)
        if codes == [0, 0] or not any(
                "address already in use" in t.lower() for t in text):
            break
    assert codes == [0, 0], text
    a, b = np.load(outs[0]), np.load(outs[1])
    assert np.all(np.isfinite(a["logs"]))
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    count = sum(k.startswith("weight_") for k in a.files)
    assert count > 0
    assert count == sum(k.startswith("ref_weight_") for k in a.files)
    for i in range(count):
        np.testing.assert_allclose(a[f"weight_{i}"], a[f"ref_weight_{i}"],
                                   atol=1e-5)
    # Loss and accuracy of each exit, as logged: global, like one process.
    np.testing.assert_allclose(a["logs"], a["ref_logs"], atol=1e-5)
