"""Quieting TensorFlow's native start-up lines under the command line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_eexit.models import get_model
from keras_eexit.utils import native_logs

STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795907918.303601    4911 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1795907918.303905    4911 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1795907918.345254    4911 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.
E0000 00:00:1795908036.124213    8097 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error
E0000 00:00:1795908036.124213    8097 something.cc:1] a real error
Traceback (most recent call last):
"""


def test_only_the_start_up_noise_is_dropped():
    assert native_logs.filter_lines(STARTUP) == (
        "E0000 00:00:1795908036.124213    8097 something.cc:1] a real error\n"
        "Traceback (most recent call last):\n")


def test_only_the_command_line_is_quieted_and_the_users_level_wins():
    assert native_logs._is_command_line(["/venv/bin/keras-eexit"], [])
    assert native_logs._is_command_line(
        ["-m"], ["python", "-m", "keras_eexit", "train"])
    assert not native_logs._is_command_line(["script.py"],
                                            ["python", "script.py"])
    environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert not native_logs.for_command_line(["keras-eexit"], [], environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "0"}


@pytest.mark.large
def test_export_prints_only_its_own_line_on_a_cpu_machine(tmp_path):
    # Issue 24 item 14: `export` used to print TensorFlow's "failed call
    # to cuInit" before its own message (its first device operation ran
    # outside the filter).
    model = get_model("small_cnn", input_shape=(8, 8, 1), num_classes=4)
    model.save(tmp_path / "m.keras")
    env = {k: v for k, v in os.environ.items()
           if k != native_logs.LEVEL_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "keras_eexit", "export", "--model",
         str(tmp_path / "m.keras"), "--out", str(tmp_path / "x.tflite")],
        capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("keras-eexit: error:"), \
        result.stderr
    assert not (tmp_path / "x.tflite").exists()


def test_demo_script_leaves_the_command_line_filter_on():
    demo = (Path(__file__).parents[2] / "scripts" / "demo").read_text()
    assert not any(line.strip().startswith("export " + native_logs.LEVEL_ENV)
                   for line in demo.splitlines())
