"""The same weights give the same numbers on TensorFlow and PyTorch.

The JAX comparisons (`test_cross_backend.py`,
`test_cross_backend_regimes.py`) run again with PyTorch on the other
side: their cases (`cross_backend_cases.py`) run in one `KERAS_BACKEND=
torch` subprocess and in this (TensorFlow) process, and their checks are
collected here with this module's fixtures (the results directory names
the backend it compared). So for every zoo family the JAX test covers
(smallest sizes; the `slow` ones as there): logits in inference mode
(1e-5), then one plain-SGD `fit` step over the whole batch, whose logs
(the compiled loss, per exit and per term) and weight updates (BatchNorm's
moving statistics included) agree to 1e-5, under every regime objective
that needs no regime state; the analytic FLOPs equal to the TF graph's;
`empirical_fisher` per sample (PyTorch: one backward pass per sample)
and per batch within 1e-6; `SequentialRegime` with EWC and with LwF
moving the same stages epoch by epoch, with the same logs and final
weights. One PyTorch subprocess runs all the fast cases.
"""

import importlib.util

import keras
import pytest

from tests.backends import cross_backend_cases as cases
from tests.conftest import shared_directory
from tests.backends.test_cross_backend import FAST
from tests.backends.test_cross_backend import FLOPS_FAST
from tests.backends.test_cross_backend import OBJECTIVES
from tests.backends.test_cross_backend import SLOW
from tests.backends.test_cross_backend import SLOW_OBJECTIVES
from tests.backends.test_cross_backend import _available
from tests.backends.test_cross_backend import (
    test_analytic_flops_equal_the_tf_graph_counts)
from tests.backends.test_cross_backend import (
    test_analytic_flops_equal_the_tf_graph_counts_on_large_families)
from tests.backends.test_cross_backend import (
    test_logits_loss_and_one_step_agree)
from tests.backends.test_cross_backend import (
    test_logits_loss_and_one_step_agree_on_large_families)
from tests.backends.test_cross_backend import test_regime_objectives_agree
from tests.backends.test_cross_backend import (
    test_regime_objectives_agree_with_batch_norm)
from tests.backends.test_cross_backend_regimes import FISHER_FAMILIES
from tests.backends.test_cross_backend_regimes import METHODS
from tests.backends.test_cross_backend_regimes import REGULARIZERS
from tests.backends.test_cross_backend_regimes import (
    test_empirical_fisher_agrees)
from tests.backends.test_cross_backend_regimes import (
    test_methods_with_their_own_step_agree)
from tests.backends.test_cross_backend_regimes import (
    test_sequential_regime_agrees_phase_by_phase)

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("torch") is None,
        reason="PyTorch is not installed: no backend to compare with"),
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="the reference side runs on the TensorFlow backend"),
]

COLLECTED = (test_analytic_flops_equal_the_tf_graph_counts,
             test_analytic_flops_equal_the_tf_graph_counts_on_large_families,
             test_logits_loss_and_one_step_agree,
             test_logits_loss_and_one_step_agree_on_large_families,
             test_regime_objectives_agree,
             test_regime_objectives_agree_with_batch_norm,
             test_empirical_fisher_agrees,
             test_sequential_regime_agrees_phase_by_phase,
             test_methods_with_their_own_step_agree)
"""The JAX modules' checks, collected here against PyTorch."""


def _run(tmp_path_factory, name, todo):
    families = {case[1] for case in todo
                if case[0] not in ("sequential", "method")}
    if any(case[0] == "sequential" for case in todo):
        families.add("digits_cnn")
    families |= {cases.METHOD_FAMILIES[case[1]] for case in todo
                 if case[0] == "method"}

    def compute(directory):
        cases.prepare(directory, sorted(families))
        cases.run_on_both(directory, todo, backend="torch")
    return shared_directory(tmp_path_factory, name, compute)


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    todo = [["one_step", family, "cross_entropy"]
            for family in _available(FAST)]
    todo += [["flops", family] for family in _available(FLOPS_FAST)]
    todo += [["one_step", family, objective]
             for family, objective in OBJECTIVES]
    todo += [["fisher", family] for family in FISHER_FAMILIES]
    todo += [["sequential", r] for r in REGULARIZERS]
    todo += [["method", name] for name in METHODS]
    return _run(tmp_path_factory, "cross_backend_torch_fast", todo)


@pytest.fixture(scope="module")
def slow_runs(tmp_path_factory):
    todo = [["one_step", family, "cross_entropy"]
            for family in _available(SLOW)]
    todo += [["flops", family] for family in _available(SLOW)
             if family not in FLOPS_FAST]
    todo += [["one_step", family, objective]
             for family, objective in SLOW_OBJECTIVES]
    return _run(tmp_path_factory, "cross_backend_torch_slow", todo)


@pytest.fixture(scope="module")
def runs(fast_runs):
    """The Fisher and sequential cases' results (run with the others)."""
    return fast_runs
