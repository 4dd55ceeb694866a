"""The NumPy and graph forms of every criterion take the same decisions.

On float32, float16 and 8-bit-quantised probabilities, including
probabilities exactly equal to the thresholds (a `>` changed to `>=` in a
graph form fails here), in TensorFlow graphs and in LiteRT.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_eexit import criteria

K, N, C = 4, 400, 5
GRID = criteria.reference_grid(100)


def _probabilities(kind, seed=0):
    """`(K, N, C)` probabilities with many rows exactly at grid values."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.5, size=(K, N, C))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    # A quarter of the rows: top probability exactly a grid value.
    tops = GRID[rng.integers(25, 99, size=(K, N // 4))].astype(np.float64)
    rest = (1 - tops)[..., None] * np.full(C - 1, 1 / (C - 1))
    probs[:, : N // 4] = np.concatenate([tops[..., None], rest], -1)
    if kind == "float32":
        return probs.astype(np.float32)
    if kind == "float16":
        return probs.astype(np.float16)
    # 8-bit quantised softmax outputs, as int8 LiteRT models return them:
    # multiples of 1/256, rows no longer summing to 1 exactly.
    return (np.round(probs * 256) / 256).astype(np.float32)


def _thresholds(name, probs):
    if name in ("max_softmax", "entropy"):
        # The grid, per-exit rows, and 40 of the data's own scores (ties
        # in every dtype, float16 and quantised values included).
        scores = np.unique(criteria.get(name).scores(probs))
        ties = scores[np.linspace(0, len(scores) - 1, 40).astype(int)]
        per_exit = np.stack([GRID[[30, 50, 70, 90]], GRID[[90, 60, 40, 0]]])
        return np.concatenate([np.repeat(GRID[:, None], K, 1),
                               np.repeat(ties[:, None], K, 1), per_exit])
    if name == "patience":
        return np.repeat(np.arange(K)[:, None], K, 1).astype(np.float32)
    return np.repeat(np.arange(1, K + 1)[:, None], K, 1).astype(np.float32)


def _graph_exits(criterion, probs, thresholds, precision):
    """Exit indices from the graph forms, exit after exit, in TensorFlow."""
    probs = tf.constant(probs.astype(np.float32))
    exits = []
    for row in thresholds:
        carry = criterion.initial_carry(N)
        taken = tf.fill([N], K - 1)
        decided = tf.zeros([N], tf.bool)
        for k in range(K - 1):
            score, carry = criterion.graph_score(probs[k], k, carry,
                                                 precision)
            accept = criterion.graph_accepts(score, tf.constant(row[k]))
            taken = tf.where(accept & ~decided, k, taken)
            decided |= accept
        exits.append(taken.numpy())
    return np.stack(exits)


@pytest.mark.parametrize("kind", ["float32", "float16", "quantised"])
@pytest.mark.parametrize("name", sorted(criteria.CRITERIA))
def test_numpy_and_tensorflow_forms_agree(name, kind):
    criterion = criteria.get(name)
    probs = _probabilities(kind)
    thresholds = _thresholds(name, probs)
    expected = criteria.exit_indices(probs, name, thresholds)
    precisions = ["float64", "float32"] if name != "entropy" else [
        "float64"]
    for precision in precisions:
        got = _graph_exits(criterion, probs, thresholds, precision)
        np.testing.assert_array_equal(got, expected)
    if name in ("max_softmax", "entropy"):
        # The data really holds ties: scores exactly at a threshold.
        ties = np.isin(criterion.scores(probs), thresholds)
        assert ties.sum() >= 40


def test_ties_decide_as_the_reference():
    """Max-softmax `>` (Kubaty et al.), entropy `<=`, patience/static `>=`."""
    t = GRID[60]
    probs = np.zeros((2, 1, 4), np.float32)
    probs[0, 0] = [t, 1 - t, 0, 0]
    probs[1, 0] = [1, 0, 0, 0]
    assert criteria.first_exit(probs, "max_softmax", t)[0] == 1
    assert criteria.first_exit(probs, "max_softmax",
                               np.nextafter(t, np.float32(0)))[0] == 0
    half = np.array([[[0.5, 0.5, 0, 0]], [[1, 0, 0, 0]]], np.float32)
    assert criteria.Entropy().scores(half)[0, 0] == 0.5
    assert criteria.first_exit(half, "entropy", 0.5)[0] == 0
    assert criteria.first_exit(half, "entropy", 0.49)[0] == 1
    assert criteria.first_exit(half, "entropy", -1.0)[0] == 1  # never
    assert criteria.first_exit(half, "patience", 0)[0] == 0
    assert criteria.first_exit(half, "static", 2)[0] == 1


def test_entropy_in_float32_graphs_is_within_two_ulps_of_one():
    probs = _probabilities("float32")
    expected = criteria.Entropy().scores(probs)
    got = np.stack([criteria.Entropy().graph_score(
        tf.constant(probs[k]), k, (), "float32")[0].numpy()
        for k in range(K)])
    assert np.abs(got - expected).max() <= 2 * np.spacing(np.float32(1))


def test_reference_grid_is_torch_linspace():
    grid = criteria.reference_grid(100)
    assert grid.dtype == np.float32 and grid[0] == 0 and grid[-1] == 1
    step = np.float32(1) / np.float32(99)
    assert grid[50] == np.float32(1) - step * np.float32(49)
    assert grid[49] == step * np.float32(49)
    # Ten points differ from numpy's float64 linspace rounded to float32.
    assert (grid != np.linspace(0, 1, 100).astype(np.float32)).sum() == 10


def test_litert_kernels_decide_as_numpy_on_ties():
    """The graph forms converted to LiteRT built-ins (float32 scores)."""
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter

    from keras_eexit.export._convert import convert

    probs = _probabilities("quantised")
    rows = {}
    for name in ("max_softmax", "patience", "static"):
        criterion = criteria.get(name)

        def decide(inputs):
            p, t = inputs["p"], inputs["t"]
            n = tf.shape(p)[1]
            carry = criterion.initial_carry(n)
            taken = tf.fill([n], K - 1)
            decided = tf.zeros([n], tf.bool)
            for k in range(K - 1):
                score, carry = criterion.graph_score(p[k], k, carry,
                                                     "float32")
                accept = criterion.graph_accepts(score, t[k])
                taken = tf.where(accept & ~decided, k, taken)
                decided = decided | accept
            return {"exit_index": taken}

        decide = tf.function(decide, input_signature=[{
            "p": tf.TensorSpec((K, None, C), tf.float32, name="p"),
            "t": tf.TensorSpec((K,), tf.float32, name="t")}])
        runner = Interpreter(model_content=convert(decide)
                             ).get_signature_runner()
        thresholds = _thresholds(name, probs)
        got = np.stack([runner(p=probs, t=row)["exit_index"]
                        for row in thresholds])
        np.testing.assert_array_equal(
            got, criteria.exit_indices(probs, name, thresholds))
        rows[name] = got
    assert len(rows) == 3
