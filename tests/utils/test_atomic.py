"""Atomic writes keep the previous file when a write fails."""

import errno
import os
import stat

import pytest

from keras_eexit.utils.atomic import atomic_path
from keras_eexit.utils.atomic import write_text


def test_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "report.md"
    write_text(path, "one")
    write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["report.md"]


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "model.keras"
    write_text(path, "good")
    with pytest.raises(OSError, match="model.keras"):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == "good"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_temp_file_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "m.keras") as tmp:
        assert tmp.endswith(".keras")
        assert os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "w").close()


_SLOW_WRITER = """
import sys, time
from keras_eexit.utils.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as f:
        for _ in range(10000):
            f.write("new" * 1000)
            f.flush()
            time.sleep(0.01)
"""


def test_killed_writer_leaves_the_previous_file_intact(tmp_path):
    import subprocess
    import sys
    import time

    path = tmp_path / "report.md"
    write_text(path, "previous report")
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER,
                               str(path)])
    deadline = time.monotonic() + 120
    try:
        while True:  # wait until the writer is half-way through
            temps = [p for p in tmp_path.iterdir() if p.name != "report.md"]
            if temps and temps[0].stat().st_size > 10000:
                break
            assert writer.poll() is None, "the writer ended early"
            assert time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.01)
    finally:
        writer.kill()
        writer.wait(timeout=60)
    assert path.read_text() == "previous report"
    # What a kill leaves is a hidden temporary file, never the output name.
    assert all(p.name.startswith(".report.md.")
               for p in tmp_path.iterdir() if p.name != "report.md")


def test_full_disk_during_model_save_keeps_the_previous_model(
        tmp_path, monkeypatch, capsys):
    import keras

    from keras_eexit.cli.main import main

    args = ["train", "--dataset", "digits", "--epochs", "1", "--verbose",
            "0", "--out", str(tmp_path)]
    assert main(args) == 0
    model_path = tmp_path / "model.keras"
    before = model_path.read_bytes()

    def full_disk(self, filepath, *a, **k):
        with open(filepath, "wb") as f:
            f.write(b"PK half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"Could not write {model_path}: No space left" in err
    assert model_path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600),
                                        (0o027, 0o640)])
def test_outputs_follow_the_users_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_text(tmp_path / "a.json", "{}")
        with atomic_path(tmp_path / "m.keras") as tmp:
            with open(tmp, "w") as f:
                f.write("x")
    finally:
        os.umask(previous)
    for name in ("a.json", "m.keras"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode
