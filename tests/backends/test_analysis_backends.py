"""The analyses on the JAX and PyTorch backends: gradient dominance,
ranks, MI, landscapes, paths, the connectivity plane, the report and the
CLI.

Runs only under `KERAS_BACKEND=jax` or `torch`: `test_training_jax_run.py`
and `test_training_torch_run.py` run this module there with TensorFlow
made unimportable, so it also shows that the analyses need no
TensorFlow. That the numbers equal TensorFlow's on the same weights is
`test_cross_backend.py`'s (`cross_backend_analyses.py`, on JAX).
"""

import argparse
import json

import keras
import numpy as np
import pytest

from keras_eexit.analysis.loss_landscape import loss_landscape
from keras_eexit.analysis.mode_connectivity import linear_path
from keras_eexit.analysis.weight_space import as_arrays
from keras_eexit.callbacks import GradientDominance
from keras_eexit.callbacks import NumericalRank
from keras_eexit.cli import analyze
from keras_eexit.data import load
from keras_eexit.models import get_model
from keras_eexit.models import load_model
from tests.conftest import make_tiny_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() not in ("jax", "torch"),
    reason="run under KERAS_BACKEND=jax and torch by "
    "test_training_jax_run.py and test_training_torch_run.py")


def _batch(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 8, 8, 1)).astype("float32"),
            rng.integers(0, 4, size=n))


def test_gradient_dominance_measures_without_moving_a_weight():
    model = make_tiny_model()
    x, y = _batch()
    model(x[:1])
    # Only the last exit is weighted: its gradient is the whole gradient,
    # the others' are zero (NaN cosines).
    model.exit_weights.assign([0.0, 0.0, 1.0])
    before = [np.array(w) for w in model.get_weights()]
    dominance = GradientDominance(x, y, every=1, scope="backbone")
    dominance.set_model(model)
    dominance.on_train_batch_end(0)
    logs = {}
    dominance.on_epoch_end(0, logs)
    np.testing.assert_allclose(dominance.cosines, [[np.nan, np.nan, 1.0]],
                               rtol=1e-6)
    assert sorted(logs) == [f"grad_cos_exit_{k}" for k in (1, 2, 3)]
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)  # moving statistics too


def test_numerical_rank_callback_measures_every_segment():
    model = make_tiny_model()
    x, _ = _batch(n=40)
    rank = NumericalRank(x, layers="segments")
    rank.set_model(model)
    logs = {}
    rank.on_epoch_end(0, logs)
    features = 8 * 8 * 4  # each segment's output
    assert sorted(logs) == [f"rank_segment_{k}" for k in (1, 2, 3)]
    assert all(0 < r <= min(len(x), features) for r in logs.values())


def _run_cli(argv):
    parser = argparse.ArgumentParser()
    analyze.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["analyze", *argv])
    return args.handler(args)


def _cross_entropy(logits, y):
    logits = np.asarray(keras.ops.convert_to_numpy(logits), np.float64)
    top = logits.max(1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
    return float(np.mean(log_z - logits[np.arange(len(y)), y]))


def test_analyze_cli_and_weight_space_analyses(tmp_path):
    saved = {}
    for seed, name in enumerate(("joint", "mixed", "disjoint")):
        keras.utils.set_random_seed(seed)
        model = get_model("small_cnn", width=4)
        model(np.zeros((1, 8, 8, 1), "float32"))
        saved[name] = tmp_path / f"{name}.keras"
        model.save(saved[name])
    out = tmp_path / "analysis"
    samples = 32
    assert _run_cli([*(f"--model={n}={p}" for n, p in saved.items()),
                     "--analyses", "rank,mi,connectivity", "--out",
                     str(out), "--resolution", "3", "--max-samples",
                     str(samples)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"ranks.json", "mutual_information.json", "connectivity.json",
            "connectivity.png", "analysis.md"} <= names
    ranks = json.loads((out / "ranks.json").read_text())
    assert list(ranks["joint"]) == ["stage1_conv", "stage2_conv",
                                    "stage3_conv"]
    mi = json.loads((out / "mutual_information.json").read_text())
    assert all(0 < v <= np.log(samples) + 1e-9
               for profile in mi.values() for v in profile.values())
    plane = json.loads((out / "connectivity.json").read_text())
    assert np.asarray(plane["losses"]).shape == (3, 3, 3)
    assert np.all(np.isfinite(plane["losses"]))
    # The landscape's centre and every point of a model's path to itself
    # are the model: its own loss on the training samples (the data set
    # comes as a PyDataset off TensorFlow).
    x, y = as_arrays(load("digits", batch_size=256).train, samples)
    model = load_model(saved["mixed"])
    own = [_cross_entropy(logits, y)
           for logits in model(x, training=False).values()]
    landscape = loss_landscape(model, (x, y), resolution=3)
    np.testing.assert_allclose(landscape.losses[:, 1, 1], own, rtol=1e-5)
    assert landscape.losses.std() > 0.01
    path = linear_path(model, model, (x, y), points=3)
    np.testing.assert_allclose(path.losses, [own] * 3, rtol=1e-5)
