"""Atomic writes keep the previous file when a write fails."""

import errno
import os

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
