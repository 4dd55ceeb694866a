"""Runs `test_training_jax.py` and `test_analysis_backends.py` on JAX, with
TensorFlow made unimportable.

The backend is fixed when Keras is first imported, so the JAX training
checks run in a fresh Python (`KERAS_BACKEND=jax`) whose import system
refuses `tensorflow`: every regime, EWC's Fisher pass, resume and failure
handling, and the analyses (gradient dominance, ranks, mutual
information, landscapes, paths, the plane, `keras-eexit analyze`) must
work there without it. One process for both: the analyses reuse the
compilations of the training checks.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from tests.backends.test_inference_jax_run import INNER_MARKS
from tests.backends.test_inference_jax_run import (
    script_without_tensorflow)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="JAX is not installed (`pip install -e .[test]` installs its CPU "
    "wheel): the JAX backend cannot be tested")

ROOT = pathlib.Path(__file__).resolve().parents[2]

RUN_WITHOUT_TENSORFLOW = script_without_tensorflow(
    "tests/backends/test_training_jax.py",
    "tests/backends/test_analysis_backends.py")


@pytest.mark.parametrize("inner", [
    "not slow", pytest.param("slow", marks=pytest.mark.slow)])
def test_training_on_jax_without_tensorflow(inner):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           INNER_MARKS: inner,
           "PYTHONPATH": os.pathsep.join(
               [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW], capture_output=True,
        text=True, timeout=1200, env=env, cwd=ROOT)
    assert result.returncode == 0, (result.stdout[-4000:]
                                    + result.stderr[-2000:])
    assert " passed" in result.stdout and "skipped" not in result.stdout, (
        result.stdout[-2000:])
