"""Examples answer `--help` without training, and say where they write."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.mark.parametrize("name", sorted(
    f for f in os.listdir(EXAMPLES) if f.endswith(".py")))
def test_help_prints_usage_and_trains_nothing(name):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), "--help"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")
    assert "Epoch" not in result.stdout and "epoch 1" not in result.stdout


@pytest.mark.large
@pytest.mark.slow  # the retrofit itself: tests/models/test_backbone_split.py
def test_retrofit_example_prints_where_it_saved(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "retrofit_backbone.py"),
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    path = tmp_path / "mobilenet_v2_exits.keras"
    assert path.exists() and f"Saved {path}" in result.stdout
