"""EWC's Fisher and the sequential regimes agree on TensorFlow and JAX.

With the same weights and data (saved by this TensorFlow process, read
by one JAX subprocess; `cross_backend_cases.py`):

* `empirical_fisher` of every exit, exact per-sample (TensorFlow's
  one-pass rewrite of the layers' gradients vs `jax.vmap` of the
  gradient) and per batch, agree within 1e-6 (relative for large
  values: 1e-6 of the value);
* `SequentialRegime(1, warmup_epochs=1, ...)` with EWC (Fisher passes of
  64 samples) and with LwF, trained by plain SGD over fixed batches,
  moves the same segments and heads in every epoch, logs the same losses
  (its penalty terms included) and ends at the same weights (1e-4: six
  epochs of updates, each through a chain of convolutions);
* the methods with their own train step: L2W's second-order
  meta-gradient agrees within 1e-5, and two epochs of L2W training (the
  halves, the look-ahead replaying SGD's momentum, the network's Adam)
  end at the same model and network weights; ZTW's ensemble phase after
  a `Joint` epoch ends at the same weights, its ensembles included.
"""

import importlib.util

import keras
import numpy as np
import pytest

from tests.backends import cross_backend_cases as cases
from tests.conftest import shared_directory

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="JAX is not installed: no backend to compare with"),
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="the reference side runs on the TensorFlow backend"),
]

FISHER_FAMILIES = ["small_cnn", "cnn1d"]
REGULARIZERS = ["ewc", "lwf"]
METHODS = ["l2w", "ztw"]

# Segments then heads moved by each epoch (1 = moved): the warm-up
# trains the backbone and the final exit; stage μ trains segments 1..μ
# and head μ (LwF: heads 1..μ from stage 2 on); a Fisher pass (EWC,
# after stages 1 and 2) trains nothing.
EXPECTED_MOVES = {
    "ewc": [[1, 1, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 1]],
    "lwf": [[1, 1, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0], [1, 1, 0, 1, 1, 0],
            [1, 1, 1, 1, 1, 1]],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    def compute(directory):
        cases.prepare(directory, FISHER_FAMILIES + ["digits_cnn"] + [
            cases.METHOD_FAMILIES[name] for name in METHODS])
        cases.run_on_both(
            directory, [["fisher", family] for family in FISHER_FAMILIES]
            + [["sequential", regularizer] for regularizer in REGULARIZERS]
            + [["method", name] for name in METHODS])
    return shared_directory(tmp_path_factory, "cross_backend_jax_regimes",
                            compute)


@pytest.mark.parametrize("family", FISHER_FAMILIES)
def test_empirical_fisher_agrees(runs, family):
    tf, jax = cases.results(runs, "fisher", family)
    assert sorted(tf) == sorted(jax)
    for mode in ("per_sample", "per_batch"):
        keys = [key for key in tf if key.startswith(mode)]
        exits = {key.split("_")[2] for key in keys}  # every exit
        assert exits == {f"exit{k}" for k in range(1, len(exits) + 1)}
        assert len(exits) >= 3
        for key in keys:
            np.testing.assert_allclose(jax[key], tf[key], rtol=1e-6,
                                       atol=1e-6, err_msg=key)
        assert max(tf[key].max() for key in keys) > 1e-2
    # The two modes differ (the check above compares different things).
    first = sorted(k for k in tf if k.startswith("per_sample"))[0]
    assert not np.allclose(tf[first], tf["per_batch" + first[10:]])


@pytest.mark.parametrize("regularizer", REGULARIZERS)
def test_sequential_regime_agrees_phase_by_phase(runs, regularizer):
    tf, jax = cases.results(runs, "sequential", regularizer)
    assert sorted(tf) == sorted(jax)
    np.testing.assert_array_equal(jax["changed"], tf["changed"])
    np.testing.assert_array_equal(tf["changed"],
                                  EXPECTED_MOVES[regularizer])
    term = f"log_{regularizer}_loss"
    assert tf[term].max() > 0
    for key in [key for key in tf if key.startswith("log_")]:
        np.testing.assert_allclose(jax[key], tf[key], rtol=1e-4,
                                   atol=1e-7, err_msg=key)
    if regularizer == "ewc":
        # Two Fisher passes (after stages 1 and 2), 64 samples each.
        np.testing.assert_array_equal(tf["log_fisher_samples"],
                                      [cases.SEQUENTIAL_BATCH] * 2)
    for key in [key for key in tf if key.startswith("weight_")]:
        np.testing.assert_allclose(jax[key], tf[key], rtol=0.0, atol=1e-4,
                                   err_msg=key)


@pytest.mark.parametrize("name", METHODS)
def test_methods_with_their_own_step_agree(runs, name):
    tf, other = cases.results(runs, "method", name)
    assert sorted(tf) == sorted(other)
    if name == "l2w":
        grads = [key for key in tf if key.startswith("meta_gradient_")]
        assert grads and max(np.abs(tf[k]).max() for k in grads) > 1e-4
        for key in grads + ["meta_loss"]:
            np.testing.assert_allclose(other[key], tf[key], rtol=1e-5,
                                       atol=1e-6, err_msg=key)
        assert np.isfinite(tf["log_l2w_meta_loss"]).all()
    else:  # one Joint epoch, then the ensemble phase
        np.testing.assert_array_equal(tf["log_phase"], [0, 1])
    for key in [k for k in tf if k.startswith("log_")]:
        np.testing.assert_allclose(other[key], tf[key], rtol=1e-5,
                                   atol=1e-6, err_msg=key)
    for key in [k for k in tf if k.startswith(("weight_", "network_"))]:
        np.testing.assert_allclose(other[key], tf[key], rtol=0.0,
                                   atol=1e-5, err_msg=key)
