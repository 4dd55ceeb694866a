"""Runs `test_training_torch.py`, `test_analysis_backends.py` and
`test_inference_backends.py` on PyTorch, with TensorFlow unimportable.

The backend is fixed when Keras is first imported, so the PyTorch checks
run in a fresh Python (`KERAS_BACKEND=torch`) whose import system refuses
`tensorflow`: every regime, EWC's Fisher pass, resume and failure
handling, the analyses, evaluation, calibration, the data sets and
batched early exit must work there without it. This (TensorFlow)
process first saves a model and the exits its TensorFlow early-exit
graph takes under every criterion; the PyTorch run must take the same.
One process for all: the later modules reuse the first's imports.

Importing Keras' PyTorch backend imports `torch._dynamo`, which asks
`importlib.util.find_spec` about third-party packages, TensorFlow among
them, and fails if the finder raises (as the JAX runs' finder does,
`test_inference_jax_run.script_without_tensorflow`): here the finder
answers with a spec without origin (which dynamo skips) whose loader
refuses, so `import tensorflow` fails as if it were not installed.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from tests.backends.test_inference_backends import REFERENCE_VARIABLE
from tests.backends.test_inference_jax_run import INNER_MARKS
from tests.backends.test_inference_jax_run import tensorflow_reference

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch is not installed (`pip install -e .[torch]` installs "
    "its CPU wheel): the PyTorch backend cannot be tested")

ROOT = pathlib.Path(__file__).resolve().parents[2]

RUN_WITHOUT_TENSORFLOW = """
import importlib.abc
import importlib.machinery
import os
import sys

import pytest


class NoTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is made unimportable by the test")

    def exec_module(self, module):
        raise ImportError(f"{module.__name__} is made unimportable")


sys.meta_path.insert(0, NoTensorFlow())
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-m",
                      os.environ.get("%s", "not slow"),
                      "tests/backends/test_training_torch.py",
                      "tests/backends/test_analysis_backends.py",
                      "tests/backends/test_inference_backends.py"]))
""" % INNER_MARKS


@pytest.mark.parametrize("inner", [
    "not slow", pytest.param("slow", marks=pytest.mark.slow)])
def test_training_analyses_and_inference_on_torch_without_tensorflow(
        tmp_path, inner):
    tensorflow_reference(tmp_path)
    env = {**os.environ, "KERAS_BACKEND": "torch", INNER_MARKS: inner,
           "CUDA_VISIBLE_DEVICES": "", REFERENCE_VARIABLE: str(tmp_path),
           "PYTHONPATH": os.pathsep.join(
               [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW], capture_output=True,
        text=True, timeout=1200, env=env, cwd=ROOT)
    assert result.returncode == 0, (result.stdout[-4000:]
                                    + result.stderr[-2000:])
    assert " passed" in result.stdout and "skipped" not in result.stdout, (
        result.stdout[-2000:])
