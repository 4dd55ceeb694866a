"""keras-eexit on the JAX backend: no TensorFlow unless a TF tool is used.

Each check runs in a fresh Python with `KERAS_BACKEND=jax` (the backend is
fixed when Keras is first imported). Building, calling, `predict` and
`.keras` save/load of zoo models run there with TensorFlow made
unimportable, and so do `fit` and `evaluate`; a TensorFlow tool (an
export) says in one line what is missing.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import shared_directory

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="JAX is not installed (`pip install -e .[test]` installs its CPU "
    "wheel): the JAX backend cannot be tested")

ROOT = pathlib.Path(__file__).resolve().parents[2]

TF_TOOLS = ("data", "export", "fisher")
"""Sub-packages whose purpose needs TensorFlow (`tf.data` pipelines,
SavedModel/LiteRT export, the Fisher pass's TensorFlow step). Importing
them does not import it; using them does."""


BLOCK_TENSORFLOW = """
import importlib.abc
import sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"{name} is made unimportable by the test")
        return None


sys.meta_path.insert(0, NoTensorFlow())
"""


def run_on_jax(script):
    """Runs `script` in a fresh Python on the JAX backend; its last stdout
    line, parsed as JSON."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(
               [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
        text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_any_module_leaves_tensorflow_unimported():
    found = run_on_jax(f"""
        import importlib, json, pkgutil, sys
        import keras
        import keras_eexit

        report = {{"backend": keras.backend.backend(),
                   "after_package": "tensorflow" in sys.modules,
                   "tf_tools": sorted(n for n in {TF_TOOLS!r}
                                      if hasattr(keras_eexit, n)),
                   "first_importer": None, "modules": 0}}
        for info in pkgutil.walk_packages(keras_eexit.__path__,
                                          "keras_eexit."):
            if info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
            report["modules"] += 1
            if "tensorflow" in sys.modules:
                report["first_importer"] = info.name
                break
        print(json.dumps(report))
        """)
    assert found["backend"] == "jax"
    assert not found["after_package"], "`import keras_eexit` imported TF"
    assert found["tf_tools"] == sorted(TF_TOOLS)
    assert found["first_importer"] is None, (
        f"{found['first_importer']} imports TensorFlow at import: import it "
        "inside the functions that need it "
        "(`from keras_eexit.utils.lazy_import import tf`)")
    assert found["modules"] > 100


ZOO = [("small_cnn", {"input_shape": (8, 8, 1), "width": 8}),
       ("cnn1d", {"input_shape": (40, 1), "width": 8}),
       ("cifar_resnet", {"depth": 20, "input_shape": (16, 16, 3)})]


@pytest.fixture(scope="module")
def without_tensorflow(tmp_path_factory):
    """Zoo models built, called, saved and loaded on JAX with TensorFlow
    unimportable; `fit`/`evaluate`/TF tools tried there (once per session:
    `shared_directory`)."""
    directory = shared_directory(tmp_path_factory, "jax_without_tensorflow",
                                 _zoo_without_tensorflow)
    return json.loads((directory / "report.json").read_text())


def _zoo_without_tensorflow(out):
    report = run_on_jax(BLOCK_TENSORFLOW + f"""
import json, os
import numpy as np
import keras
import keras_eexit

report = {{"backend": keras.backend.backend(), "zoo": {{}}}}
for name, kwargs in {ZOO!r}:
    model = keras_eexit.models.get_model(name, num_classes=4, **kwargs)
    x = np.random.default_rng(0).normal(
        size=(3,) + kwargs["input_shape"]).astype("float32")
    called = {{k: np.asarray(v) for k, v in model(x).items()}}
    predicted = model.predict(x, verbose=0)
    path = os.path.join({str(out)!r}, name + ".keras")
    model.save(path)
    loaded = keras_eexit.load_model(path)
    reloaded = {{k: np.asarray(v) for k, v in loaded(x).items()}}
    report["zoo"][name] = {{
        "class": type(loaded).__name__,
        "exits": sorted(called),
        "finite": all(bool(np.isfinite(v).all()) for v in called.values()),
        "predict_gap": max(float(np.abs(predicted[k] - v).max())
                           for k, v in called.items()),
        "reload_gap": max(float(np.abs(reloaded[k] - v).max())
                          for k, v in called.items()),
    }}

model.compile(optimizer="adam", metrics=["accuracy"])
y = np.array([0, 1, 2])
for what, call in [("fit", lambda: model.fit(x, y, epochs=1, verbose=0)),
                   ("evaluate", lambda: model.evaluate(x, y, verbose=0)),
                   ("export", lambda: keras_eexit.inference.export_saved_model(
                       model, os.path.join({str(out)!r}, "served")))]:
    try:
        call()
        report[what] = None
    except Exception as error:
        report[what] = [type(error).__name__, str(error)]
print(json.dumps(report))
""")
    (out / "report.json").write_text(json.dumps(report))


@pytest.mark.parametrize("name", [name for name, _ in ZOO])
def test_zoo_model_calls_saves_and_loads_on_jax(without_tensorflow, name):
    assert without_tensorflow["backend"] == "jax"
    result = without_tensorflow["zoo"][name]
    assert result["class"] == "MultiExitModel"
    assert result["exits"][0] == "exit_1" and len(result["exits"]) >= 3
    assert result["finite"]
    assert result["predict_gap"] < 1e-5
    assert result["reload_gap"] < 1e-6


@pytest.mark.parametrize("what", ["fit", "evaluate"])
def test_fit_and_evaluate_run_on_jax_without_tensorflow(without_tensorflow,
                                                        what):
    # `None`: the call returned (tests/backends/test_training_jax.py
    # checks what training does there).
    assert without_tensorflow[what] is None


def test_tf_tool_without_tensorflow_names_what_is_missing(
        without_tensorflow):
    kind, message = without_tensorflow["export"]
    assert kind == "ImportError"
    assert "needs `tensorflow`, which cannot be imported" in message
    assert "pip install tensorflow" in message
