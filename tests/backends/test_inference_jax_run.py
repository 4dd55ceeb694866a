"""Runs `test_inference_backends.py` on JAX, with TensorFlow unimportable.

The backend is fixed when Keras is first imported, so the JAX checks run
in a fresh Python (`KERAS_BACKEND=jax`) whose import system refuses
`tensorflow`: early exit, `collect`, sweeps, budget tables, calibration
and the embedded data sets must all work there, and the exports must say
in one line that they need TensorFlow. This (TensorFlow) process first
saves a model and the exits its TensorFlow early-exit graph takes under
every criterion; the JAX run must take the same.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_eexit import criteria
from keras_eexit.data import load_arrays
from keras_eexit.evaluation import collect
from keras_eexit.inference import predict_early_exit
from keras_eexit.models import get_model
from tests.backends.test_inference_backends import CRITERIA
from tests.backends.test_inference_backends import REFERENCE_VARIABLE
from tests.backends.test_inference_backends import policies_of
from tests.inference.toy_criteria import LeastConfidence
from tests.inference.toy_criteria import TopTwoMargin

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="JAX is not installed (`pip install -e .[test]` installs its CPU "
    "wheel): the JAX backend cannot be tested")

ROOT = pathlib.Path(__file__).resolve().parents[2]


INNER_MARKS = "KERAS_EEXIT_INNER_MARKS"
"""The marker expression a runner's inner pytest selects with (default
`"not slow"`): a runner's `slow` sibling sets it to `"slow"`, so that
`./scripts/test -m slow` reaches the `slow` variants inside too."""


def script_without_tensorflow(*modules):
    """A Python script that runs pytest on `modules` with TensorFlow made
    unimportable (for a fresh `KERAS_BACKEND=jax` process), selecting
    with `INNER_MARKS`."""
    return """
import importlib.abc
import os
import sys

import pytest


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"{name} is made unimportable by the test")
        return None


sys.meta_path.insert(0, NoTensorFlow())
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-m",
                      os.environ.get(%r, "not slow"), *%r]))
""" % (INNER_MARKS, list(modules))


RUN_WITHOUT_TENSORFLOW = script_without_tensorflow(
    "tests/backends/test_inference_backends.py")


def tensorflow_reference(directory):
    """Saves a model, inputs, policies of every criterion and the exits
    the TensorFlow graph takes under them, for the JAX (or PyTorch) run
    to compare."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the reference exits come from the TensorFlow backend")
    keras.utils.set_random_seed(0)
    model = get_model("small_cnn", num_classes=10, width=4)
    x = load_arrays("digits", validation_split=0.25, seed=0)["x_test"][:150]
    outputs = collect(model, (x, np.zeros(len(x), "int64")))
    toys = [criteria.register(cls()) for cls in (TopTwoMargin,
                                                  LeastConfidence)]
    try:
        policies = [p for name in CRITERIA
                    for p in policies_of(name, outputs)]
        exits = [predict_early_exit(model, x, policy=p, batch_size=64)[1]
                 for p in policies]
    finally:
        for toy in toys:
            criteria.unregister(toy.name)
    model.save(directory / "model.keras")
    np.savez(directory / "reference.npz", x=x, exits=np.stack(exits))
    (directory / "policies.json").write_text(
        json.dumps([p.to_dict() for p in policies]))
    return exits


def test_inference_evaluation_and_data_pass_on_jax_without_tensorflow(
        tmp_path):
    exits = tensorflow_reference(tmp_path)
    assert {int(k) for e in exits for k in e} == {0, 1, 2}
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", REFERENCE_VARIABLE: str(tmp_path),
           "PYTHONPATH": os.pathsep.join(
               [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW], capture_output=True,
        text=True, timeout=900, env=env, cwd=ROOT)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary
