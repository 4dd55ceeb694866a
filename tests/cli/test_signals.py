"""Real processes: Ctrl-C/SIGTERM on `train`, and a multi-worker task whose
peer never comes (issue 19, item 11). Each starts `python -m keras_eexit`
(seconds of imports), hence `large`. Every wait is for an event (a file, a
line on stderr) under a generous ceiling, never a speed assumption: the
suite must pass on a loaded machine.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

CEILING = 900  # seconds; only a hung process gets near it

NOISE = ("absl::InitializeLog", "cudart_stub", "cuInit", "port.cc",
         "cpu_feature_guard")


def _environ(**extra):
    """This environment without TF_CPP_MIN_LOG_LEVEL: the CLI quiets TF."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CONFIG")}
    env.update(extra)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, seconds, process):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, "the process ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.large
@pytest.mark.parametrize("number", [
    # One handler serves both signals (`utils/interrupts.py`;
    # tests/cli/test_interrupts.py sends each in-process): SIGINT end to
    # end with `-m slow`.
    pytest.param(signal.SIGINT, marks=pytest.mark.slow), signal.SIGTERM])
def test_interrupted_train_prints_one_line_and_keeps_its_backup(
        tmp_path, number):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_eexit", "train", "--epochs", "200",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_environ())
    try:
        _wait_for(lambda: (out / "backup" / "history.json").exists(), CEILING,
                  process)
        process.send_signal(number)
        stdout, stderr = process.communicate(timeout=CEILING)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + number, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "resume with `keras-eexit train --resume --out" in lines[0]
    assert signal.Signals(number).name in lines[0] or "Ctrl-C" in lines[0]
    assert not any(word in stdout + stderr for word in NOISE), stderr
    assert "Configuration: dataset digits" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["backup", "run.json"]


def _worker_command(out, timeout):
    return [sys.executable, "-m", "keras_eexit", "train", "--strategy",
            "multiworker", "--epochs", "1", "--connect-timeout",
            str(timeout), "--out", str(out)]


def _tf_config():
    peer = f"127.0.0.1:{_free_port()}"
    return peer, json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{_free_port()}", peer]},
        "task": {"type": "worker", "index": 0}})


@pytest.mark.large
def test_multiworker_peer_that_never_comes_times_out_clearly(tmp_path):
    out = tmp_path / "run"
    peer, tf_config = _tf_config()
    result = subprocess.run(_worker_command(out, 5), capture_output=True,
                            text=True, timeout=CEILING,
                            env=_environ(TF_CONFIG=tf_config))
    assert result.returncode == 1, result.stderr
    assert "not connected within 5 s" in result.stderr
    assert peer in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(word in result.stderr for word in NOISE), result.stderr
    assert not out.exists()


def _children(pid):
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path, encoding="utf-8") as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.large
@pytest.mark.parametrize("number", [
    signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_multiworker_waiting_for_its_cluster_stops_on_a_signal(tmp_path,
                                                               number):
    out = tmp_path / "run"
    _, tf_config = _tf_config()
    process = subprocess.Popen(
        _worker_command(out, 600), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        env=_environ(TF_CONFIG=tf_config))
    try:
        deadline = time.monotonic() + CEILING
        text = ""
        while "is waiting for the cluster" not in text:
            assert time.monotonic() < deadline and process.poll() is None, \
                text
            ready, _, _ = select.select([process.stderr], [], [], 1.0)
            if ready:
                text += process.stderr.readline()
        children = _children(process.pid)
        assert children
        time.sleep(3)  # the child is blocked connecting by now
        process.send_signal(number)
        _, rest = process.communicate(timeout=CEILING)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + number, text + rest
    assert f"{signal.Signals(number).name} received while waiting" in rest
    for child in children:
        assert not os.path.exists(f"/proc/{child}") or open(
            f"/proc/{child}/stat").read().split()[2] == "Z"
    assert not out.exists()


def _gone(pid):
    """The process has ended (a zombie whose parent has not reaped it
    counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _waiting_worker(out):
    """A supervised multi-worker `train` whose peer never comes, once its
    child is connecting: `(supervisor, child pid)`."""
    _, tf_config = _tf_config()
    process = subprocess.Popen(
        _worker_command(out, 600), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        env=_environ(TF_CONFIG=tf_config))
    deadline = time.monotonic() + CEILING
    text = ""
    while "is waiting for the cluster" not in text:
        assert time.monotonic() < deadline and process.poll() is None, text
        ready, _, _ = select.select([process.stderr], [], [], 1.0)
        if ready:
            text += process.stderr.readline()
    children = _children(process.pid)
    assert len(children) == 1
    # The child binds itself to the supervisor right after it starts:
    # wait until it has gone past its imports (its threads appear).
    _wait_for(lambda: len(os.listdir(f"/proc/{children[0]}/task")) > 1,
              CEILING, process)
    return process, children[0]


@pytest.mark.large
def test_multiworker_child_dies_with_a_killed_supervisor(tmp_path):
    # Issue 24 item 12: SIGKILL to the supervisor used to leave the child
    # running, deaf to SIGTERM.
    process, child = _waiting_worker(tmp_path / "run")
    try:
        process.kill()
        process.communicate(timeout=CEILING)
        deadline = time.monotonic() + CEILING
        while not _gone(child):
            assert time.monotonic() < deadline, "the child outlived it"
            time.sleep(0.1)
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
    assert not (tmp_path / "run").exists()


@pytest.mark.large
def test_multiworker_child_connecting_honours_sigterm(tmp_path):
    process, child = _waiting_worker(tmp_path / "run")
    try:
        with open(f"/proc/{child}/cmdline", "rb") as f:
            assert b"multiworker" in f.read()
        os.kill(child, signal.SIGTERM)
        # The supervisor sees its child end before the connection and
        # returns the child's code (-SIGTERM) after its own message.
        process.communicate(timeout=CEILING)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert _gone(child)
    assert process.returncode != 0
