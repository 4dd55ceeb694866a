"""Methods' networks under evaluation, batched early exit and LiteRT."""

import numpy as np
import pytest

from keras_eexit import criteria
from keras_eexit.evaluation import collect
from keras_eexit.inference import ExitPolicy
from keras_eexit.inference import predict_early_exit
from keras_eexit.methods import gpf
from keras_eexit.methods import ztw
from keras_eexit.methods.ztw import ensemble_heads
from keras_eexit.testing import model_contract
from tests.conftest import make_tiny_model

X = np.random.default_rng(3).normal(size=(64, 8, 8, 1)).astype("float32")


def method_model(name):
    """A 3-exit tiny model as `name`'s network (ZTW's ensembles switched
    on with random weights, as after their phase)."""
    base = make_tiny_model(num_exits=3)
    if name == "gpf":
        return gpf(base, state_dim=6, state_head="linear")
    model = ztw(base)
    rng = np.random.default_rng(0)
    for head in ensemble_heads(model):
        head.ensemble_weights.assign(
            rng.normal(size=head.ensemble_weights.shape))
        head.ensemble_ready.assign(1.0)
    return model


def check_decisions(model, x, criterion, thresholds):
    """`predict_early_exit` takes the sweep's decisions, for every sample,
    with the same probabilities and the exits' FLOPs."""
    outputs = collect(model, (x, np.zeros(len(x), "int64")), batch_size=32)
    if thresholds is None:  # about half the samples leave at each exit
        scores = criteria.get(criterion).scores(outputs.probs)
        thresholds = np.median(scores, axis=1).astype(np.float32)
    policy = ExitPolicy(criterion, thresholds)
    expected = policy.exit_indices(outputs.probs)
    probs, index, flops = predict_early_exit(model, x, policy=policy,
                                             batch_size=32)
    np.testing.assert_array_equal(index, expected)
    assert len(np.unique(index)) >= 2  # the batch really split
    np.testing.assert_allclose(
        probs, outputs.probs[expected, np.arange(len(x))], atol=1e-5)
    np.testing.assert_array_equal(
        flops, np.asarray(model.flops_per_exit())[expected])


@pytest.mark.parametrize("name", ["ztw", "gpf"])
def test_batched_early_exit_decides_as_the_sweep(name):
    check_decisions(method_model(name), X, "max_softmax", None)


@pytest.mark.large
@pytest.mark.parametrize("name", ["ztw", "gpf"])
def test_litert_exports_compute_keras_probabilities(name, tmp_path):
    model_contract.check_litert(method_model(name), X[:4], tmp_path)
