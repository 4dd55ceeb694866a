"""Property-based tests (hypothesis) of sweeps, budget tables and parsing."""

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_eexit.cli.compare import parse_regimes
from keras_eexit.cli.options import parse_params as _params
from keras_eexit.evaluation import budget_table
from keras_eexit.evaluation import threshold_sweep


@st.composite
def outputs(draw):
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    c = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=draw(st.floats(0.1, 5.0)), size=(k, n, c))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    flops = np.cumsum(rng.integers(1, 1000, k))
    return probs, rng.integers(0, c, n), flops


@settings(max_examples=60, deadline=None)
@given(outputs(), st.sampled_from(["max_softmax", "entropy"]))
def test_sweep_invariants(data, criterion):
    probs, labels, flops = data
    result = threshold_sweep(probs, labels, flops, criterion, thresholds=11)
    np.testing.assert_allclose(result.exit_ratios.sum(1), 1.0)
    assert np.all((result.accuracy >= 0) & (result.accuracy <= 1))
    assert np.all(result.mean_flops >= flops[0] - 1e-9)
    assert np.all(result.mean_flops <= flops[-1] + 1e-9)
    # Stricter thresholds never make samples leave earlier.
    step = np.diff(result.mean_flops)
    assert np.all(step >= -1e-9) if criterion == "max_softmax" else np.all(
        step <= 1e-9)


@settings(max_examples=60, deadline=None)
@given(outputs())
def test_budget_table_invariants(data):
    probs, labels, flops = data
    result = threshold_sweep(probs, labels, flops, thresholds=21)
    table = budget_table(result, flops)
    assert table["100%"] == result.accuracy[-1]  # everything fits
    values = [v for v in table.values() if not np.isnan(v)]
    assert all(0 <= v <= result.accuracy.max() + 1e-12 for v in values)
    assert table["max"] == result.accuracy[-1]  # most conservative point


keys = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)
values = st.one_of(st.integers(-1000, 1000),
                   st.floats(allow_nan=False, allow_infinity=False,
                             width=32),
                   st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_param_parsing_round_trip(params):
    pairs = [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}"
             for k, v in params.items()]
    parsed = _params(pairs)
    assert parsed.keys() == params.keys()
    for key, value in params.items():
        if isinstance(value, str) and value in ("True", "False", "None"):
            continue
        assert parsed[key] == value


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["joint", "mixed", "sequential"]),
    st.dictionaries(keys, st.integers(0, 9), max_size=3)),
    min_size=1, max_size=4, unique_by=lambda t: (t[0], tuple(sorted(
        t[1].items())))))
def test_regime_spec_parsing(specs):
    text = ",".join(
        name + (("[" + ",".join(f"{k}={v}" for k, v in p.items()) + "]")
                if p else "") for name, p in specs)
    labels = text.split(",") if "[" not in text else None
    parsed = parse_regimes(text)
    assert [(name, params) for _, name, params in parsed] == [
        (name, dict(p)) for name, p in specs]
    if labels is not None:
        assert [label for label, _, _ in parsed] == labels
