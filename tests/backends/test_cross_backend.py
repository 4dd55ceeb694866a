"""The same weights give the same numbers on TensorFlow and JAX.

For every zoo family (smallest sizes) this (TensorFlow) process saves
initial weights and a fixed batch; one JAX subprocess and this process
then run the same cases (`cross_backend_cases.py`) from them: the logits
in inference mode (1e-5), then one `fit` step with plain SGD over the
whole batch, whose logs (the compiled loss, per exit and per term, at the
initial weights) and weight updates (BatchNorm's moving statistics
included) must agree to 1e-5. The regime objectives that need no regime
state (damping, power-sqrt with dynamic weights, distillation from the
final exit, selective cross-entropy) run on the small CNN (`slow`:
power-sqrt on a ResNet with BatchNorm too); EWC and LwF are
`test_cross_backend_regimes.py`'s. The same JAX subprocess runs the
analyses on the small CNN (`cross_backend_analyses.py`) and counts every
family's FLOPs, which must equal the TF-graph counter's (the analytic
counter runs there: the JAX side has no TF graph). `SLOW` says
which families are `slow` and why.
"""

import importlib.util

import keras
import numpy as np
import pytest

from keras_eexit.models import text_transformer
from tests.backends import cross_backend_cases as cases
from tests.backends.cross_backend_analyses import check_analyses
from tests.conftest import shared_directory

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="JAX is not installed: no backend to compare with"),
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="the reference side runs on the TensorFlow backend"),
]

FAST = ["small_cnn", "cnn1d", "cifar_resnet"]
SLOW = ["vit_exits", "text_builtin", "msdnet_cifar", "ranet_cifar",
        "text_keras_hub", "msdnet_imagenet", "vgg16_exits",
        "mobilenet_v2_exits", "resnet50_exits"]
"""`slow`: the transformers (attention and layer norm: Keras' own layers
on each backend; they compile longest after the multi-scale nets), the
multi-scale nets (MSDNet, RANet: hundreds of small layers, the
longest JAX compilations of the zoo), keras-hub's encoder and the
`keras.applications` backbones (large weights). Their FLOPs are compared
in CI (`FLOPS_FAST`): counting compiles nothing."""
FLOPS_FAST = FAST + ["vit_exits", "text_builtin"]
OBJECTIVES = [("small_cnn", "distillation"), ("small_cnn", "selective"),
              ("small_cnn_damping", "damping"),
              ("small_cnn_damping", "power_sqrt")]
SLOW_OBJECTIVES = [("cifar_resnet_damping", "power_sqrt")]

TOLERANCE = 1e-5
DEEP_TOLERANCE = {"log": 1e-4, "update": 1e-3}
"""Of the loss and the update of the `keras.applications` backbones
(logits: 1e-5 as every family). Their 32-pixel inputs reach 1x1 maps at
stride 32, where BatchNorm in training mode normalises over the batch's
8 values: float32 round-off is amplified. It is not the backend's: on
TensorFlow alone, MobileNetV2's float32 update differs from its float64
update by 3.8e-4, as much as TensorFlow's from JAX's (3.2e-4)."""
DEEP = {"mobilenet_v2_exits", "resnet50_exits"}
UNDETERMINED_UPDATE = {"resnet50_exits"}
"""Families whose one-step update float32 does not determine at these
sizes: ResNet-50's BatchNorm (epsilon 1e-5) over 8 values of a 1x1 map
makes TensorFlow's own float32 update differ from its float64 update by
up to 1.0. Their logits and losses are compared, not their updates."""


def _available(families):
    if text_transformer.keras_hub_available():
        return families
    return [f for f in families if f != "text_keras_hub"]


def _run(tmp_path_factory, name, todo):
    def compute(directory):
        cases.prepare(directory, sorted({case[1] for case in todo}))
        cases.run_on_both(directory, todo)
    return shared_directory(tmp_path_factory, name, compute)


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    todo = [["one_step", family, "cross_entropy"]
            for family in _available(FAST)]
    todo += [["flops", family] for family in _available(FLOPS_FAST)]
    todo += [["one_step", family, objective]
             for family, objective in OBJECTIVES]
    todo += [["analyses", "small_cnn"]]
    return _run(tmp_path_factory, "cross_backend_jax_fast", todo)


@pytest.fixture(scope="module")
def slow_runs(tmp_path_factory):
    todo = [["one_step", family, "cross_entropy"]
            for family in _available(SLOW)]
    todo += [["flops", family] for family in _available(SLOW)
             if family not in FLOPS_FAST]
    todo += [["one_step", family, objective]
             for family, objective in SLOW_OBJECTIVES]
    return _run(tmp_path_factory, "cross_backend_jax_slow", todo)


def _check_one_step(directory, family, objective):
    tf, jax = cases.results(directory, "one_step", family, objective)
    assert sorted(tf) == sorted(jax)
    logits = [key for key in tf if key.startswith("logits_")]
    logs = [key for key in tf if key.startswith("log_")]
    updates = [key for key in tf if key.startswith("update_")]
    assert len(logits) >= 2 and "log_loss" in logs and updates
    for key in logits:
        np.testing.assert_allclose(jax[key], tf[key], rtol=TOLERANCE,
                                   atol=TOLERANCE, err_msg=key)
    deep = family in DEEP
    for key in logs:
        np.testing.assert_allclose(
            jax[key], tf[key], err_msg=key,
            rtol=DEEP_TOLERANCE["log"] if deep else TOLERANCE)
    for key in [] if family in UNDETERMINED_UPDATE else updates:
        np.testing.assert_allclose(
            jax[key], tf[key], rtol=0.0, err_msg=key,
            atol=DEEP_TOLERANCE["update"] if deep else TOLERANCE)
    # The step moved most weights (by far more than the tolerance at
    # most), BatchNorm's moving statistics included. Not all: the
    # multi-scale nets compute finer scales in their last layers that no
    # exit reads (their weights get no gradient).
    size = np.array([np.abs(tf[key]).max() for key in sorted(updates)])
    np.testing.assert_array_equal(jax["moving"], tf["moving"])
    assert (size > 0).mean() > 0.5, f"{family}: the step moved little"
    assert size.max() > 100 * TOLERANCE
    assert (size[tf["moving"]] > 0).all()
    return tf


@pytest.mark.parametrize("family", FAST)
def test_logits_loss_and_one_step_agree(fast_runs, family):
    _check_one_step(fast_runs, family, "cross_entropy")


@pytest.mark.slow
@pytest.mark.parametrize("family", SLOW)
def test_logits_loss_and_one_step_agree_on_large_families(slow_runs,
                                                          family):
    if family not in _available(SLOW):
        pytest.skip("keras-hub is not installed")
    _check_one_step(slow_runs, family, "cross_entropy")


def _check_flops(directory, family):
    tf, other = cases.results(directory, "flops", family)
    assert tf["tf_graph"] and not other["tf_graph"]
    for convention in ("keras_eexit", "fvcore"):
        np.testing.assert_array_equal(other[convention], tf[convention])
        assert np.all(np.diff(tf[convention]) > 0)


@pytest.mark.parametrize("family", FLOPS_FAST)
def test_analytic_flops_equal_the_tf_graph_counts(fast_runs, family):
    _check_flops(fast_runs, family)


@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in SLOW
                                    if f not in FLOPS_FAST])
def test_analytic_flops_equal_the_tf_graph_counts_on_large_families(
        slow_runs, family):
    if family not in _available(SLOW):
        pytest.skip("keras-hub is not installed")
    _check_flops(slow_runs, family)


@pytest.mark.parametrize("family, objective", OBJECTIVES)
def test_regime_objectives_agree(fast_runs, family, objective):
    tf = _check_one_step(fast_runs, family, objective)
    if objective == "distillation":
        assert tf["log_distillation_loss"] > 0


def test_analyses_agree(fast_runs):
    check_analyses(fast_runs, "small_cnn")


@pytest.mark.slow
@pytest.mark.parametrize("family, objective", SLOW_OBJECTIVES)
def test_regime_objectives_agree_with_batch_norm(slow_runs, family,
                                                 objective):
    _check_one_step(slow_runs, family, objective)
