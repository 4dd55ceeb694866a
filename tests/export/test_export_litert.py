"""LiteRT export: parity with Keras, early exit, quantisation, atomic files."""

import json
import os

import keras
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from keras_eexit import MultiExitModel  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.export import SIDECAR  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit import criteria  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.export import litert_export as export_module  # noqa: E402
from keras_eexit.models import cnn1d  # noqa: E402
from keras_eexit.models import small_cnn  # noqa: E402

THRESHOLDS = {
    "max_softmax": (0.0, 0.3, 0.6, 0.8, 0.9, 0.99, 1.0),
    "entropy": (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0),
}


def keras_probs(model, x):
    """`(num_exits, N, C)` softmax of every exit, computed by Keras."""
    out = model(x, training=False)
    return np.stack([
        keras.ops.convert_to_numpy(keras.ops.softmax(out[name]))
        for name in model.exit_names
    ])


@pytest.fixture(scope="module")
def digits():
    keras.utils.set_random_seed(0)
    arrays = load_arrays("digits")
    model = small_cnn(num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=6,
              batch_size=64, verbose=0)
    x, y = arrays["x_test"], arrays["y_test"]
    return model, arrays, x, y, keras_probs(model, x)


@pytest.fixture(scope="module")
def exports(digits, tmp_path_factory):
    """Float exports of the digits model, shared by the parity tests."""
    model = digits[0]
    root = tmp_path_factory.mktemp("litert")
    paths = {}
    for mode in ("early_exit", "per_exit", "segments"):
        for criterion in ("max_softmax", "entropy"):
            path = root / f"{mode}_{criterion}"
            export_litert(model, path, mode=mode, criterion=criterion)
            paths[mode, criterion] = path
    return paths


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("mode", ["per_exit", "segments"])
def test_float_exports_match_keras_probabilities(digits, exports, mode):
    _, _, x, _, probs = digits
    runner = LiteRTRunner(exports[mode, "max_softmax"])
    np.testing.assert_allclose(runner.predict_all(x), probs, atol=1e-4)


@pytest.mark.parametrize("criterion", ["max_softmax", "entropy"])
def test_early_exit_model_takes_the_numpy_rules_exit(digits, exports,
                                                     criterion):
    _, _, x, _, probs = digits
    runner = LiteRTRunner(exports["early_exit", criterion])
    taken = set()
    for threshold in THRESHOLDS[criterion]:
        got_probs, got_exit = runner.predict(x, threshold)
        expected = criteria.first_exit(probs, criterion, threshold)
        np.testing.assert_array_equal(got_exit, expected)  # 100%
        same = got_exit == expected
        np.testing.assert_allclose(
            got_probs[same], probs[expected[same], np.flatnonzero(same)],
            atol=1e-4,
        )
        taken.update(np.unique(got_exit).tolist())
    # The thresholds exercise every exit, so every If branch ran.
    assert taken == {0, 1, 2}


@pytest.mark.parametrize("mode", ["per_exit", "segments"])
def test_runner_drives_per_exit_and_segment_files_like_early_exit(
        digits, exports, mode):
    _, _, x, _, probs = digits
    early = LiteRTRunner(exports["early_exit", "entropy"])
    runner = LiteRTRunner(exports[mode, "entropy"])
    for threshold in (0.1, 0.4):
        p1, e1 = early.predict(x, threshold)
        p2, e2 = runner.predict(x, threshold)
        np.testing.assert_array_equal(e1, e2)
        np.testing.assert_allclose(p1[e1 == e2], p2[e1 == e2], atol=1e-4)


def test_one_row_path_decides_as_the_batch_path(digits, exports,
                                                tmp_path):
    # A batch of one row takes the file's own single-row path (nested Ifs,
    # no gathers); it must decide and predict as the compaction path.
    model, _, x, _, probs = digits
    patience = tmp_path / "patience"
    export_litert(model, patience, mode="early_exit", criterion="patience")
    cases = [(exports["early_exit", "max_softmax"], (0.3, 0.8, 0.99)),
             (exports["early_exit", "entropy"], (0.05, 0.2, 0.7)),
             (patience, (0, 1, 2))]
    for path, thresholds in cases:
        runner = LiteRTRunner(path)
        for threshold in thresholds:
            batch_probs, batch_exit = runner.predict(x[:40], threshold)
            rows = [runner.predict(sample, threshold) for sample in x[:40]]
            np.testing.assert_array_equal([r[1] for r in rows], batch_exit)
            np.testing.assert_allclose(np.stack([r[0] for r in rows]),
                                       batch_probs, atol=1e-6)
            expected = criteria.first_exit(probs[:, :40], runner.criterion,
                                           threshold)
            np.testing.assert_array_equal(batch_exit, expected)


# ------------------------------------------- distinct per-exit thresholds
# Every path must read exit k's own threshold at exit k. Each row differs
# from its reverse and from "the first threshold at every exit" on the
# digits test samples (checked below), so a path that reads `thresholds[0]`
# (or another exit's value) fails. Static takes one exit number through
# the public API; its graphs still read one value per exit.
PER_EXIT = {
    "max_softmax": [(0.3, 0.8, 0.99), (0.99, 0.8, 0.3)],
    "entropy": [(0.05, 0.2, 0.7), (0.7, 0.2, 0.05)],
    "patience": [(1, 0, 2), (2, 1, 0)],
    "static": [(3, 2, 1), (2, 3, 1)],
}


def _on_scores(criterion, probs):
    """Rows whose thresholds sit exactly on samples' scores (continuous
    criteria; integer scores always sit on their thresholds)."""
    c = criteria.get(criterion)
    if not c.continuous:
        return []
    scores = np.sort(c.scores(probs), axis=1)  # (K, N)
    n = scores.shape[1]
    return [tuple(scores[:, n // 2]), tuple(scores[:, n // 4])[::-1]]


def _signatures(path):
    """The early-exit file's batched and one-row signatures, called
    directly (no range check: static gets per-exit values too)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path / "early_exit.tflite"))
    batch = interpreter.get_signature_runner("serving_default")
    one_row = interpreter.get_signature_runner("one_row")

    def run(x, thresholds):
        t = np.asarray(thresholds, np.float32)
        out = batch(input=x, thresholds=t)
        rows = [one_row(input=sample[None], thresholds=t) for sample in x]
        return ((out["probabilities"], out["exit_index"]),
                (np.concatenate([r["probabilities"] for r in rows]),
                 np.concatenate([r["exit_index"] for r in rows])))

    return run


def _forcing(criterion, k, num_exits=3):
    """Thresholds that send every sample out at exit `k`."""
    c = criteria.get(criterion)
    if not c.per_exit:
        return np.full(num_exits, k + 1, np.float32)
    t = np.full(num_exits, c.never_exit(num_exits), np.float32)
    t[k] = c.eager_threshold(num_exits)
    return t


def _own_probs(run, x, criterion):
    """Every exit's probabilities as each signature of the file computes
    them: `(batched (K, N, C), one-row (K, N, C))`."""
    batch, rows = [], []
    for k in range(3):
        (pb, eb), (pr, er) = run(x, _forcing(criterion, k))
        assert (eb == k).all() and (er == k).all()
        batch.append(pb)
        rows.append(pr)
    return np.stack(batch), np.stack(rows)


@pytest.fixture(scope="module")
def early_exit_files(digits, exports, tmp_path_factory):
    """Float early-exit files for every criterion."""
    root = tmp_path_factory.mktemp("per_exit_thresholds")
    files = {c: exports["early_exit", c] for c in ("max_softmax", "entropy")}
    for criterion in ("patience", "static"):
        export_litert(digits[0], root / criterion, mode="early_exit",
                      criterion=criterion)
        files[criterion] = root / criterion
    return files


@pytest.mark.parametrize("criterion", sorted(PER_EXIT))
def test_every_path_reads_each_exits_own_threshold(digits, early_exit_files,
                                                   criterion):
    from keras_eexit.evaluation import collect
    from keras_eexit.evaluation import exit_indices
    from keras_eexit.evaluation import threshold_sweep
    from keras_eexit.inference import predict_early_exit
    from keras_eexit.inference.predict import early_exit_function

    model, _, x, y, _ = digits
    x, y = x[:60], y[:60]
    c = criteria.get(criterion)
    outputs = collect(model, (x, y))
    run = _signatures(early_exit_files[criterion])
    runner = LiteRTRunner(early_exit_files[criterion])
    batch_probs, row_probs = _own_probs(run, x, criterion)
    # The float signatures compute the same probabilities, bit for bit.
    np.testing.assert_array_equal(row_probs, batch_probs)
    function = early_exit_function(model, criterion)
    decided = {}
    for row in PER_EXIT[criterion] + _on_scores(criterion, outputs.probs):
        row = np.float32(row)
        # The sweep's rule on Keras' probabilities ...
        expected = exit_indices(outputs.probs, criterion, row[None])[0]
        first = exit_indices(outputs.probs, criterion,
                             np.full((1, 3), row[0]))[0]
        assert (first != expected).any(), row  # the row matters
        if c.per_exit:
            result = threshold_sweep(outputs, criterion=criterion,
                           thresholds=row[None])
            np.testing.assert_allclose(result.exit_ratios[0], np.bincount(
                expected, minlength=3) / len(x))
            _, index, _ = predict_early_exit(model, x, row, criterion)
            np.testing.assert_array_equal(index, expected)
        # ... is batched early exit's (the graph behind every export).
        out = function(x, row, np.ones(3, np.float32))
        np.testing.assert_array_equal(out["exit_index"], expected)
        decided[tuple(row)] = expected
    for row in PER_EXIT[criterion] + _on_scores(criterion, batch_probs):
        row = np.float32(row)
        # Both signatures of the LiteRT file decide as the rule on the
        # probabilities they compute (at ties too) and as each other.
        (_, batch_exit), (_, row_exit) = run(x, row)
        np.testing.assert_array_equal(row_exit, batch_exit)
        if c.per_exit:
            single = [runner.predict(sample, row)[1] for sample in x]
            np.testing.assert_array_equal(single, batch_exit)
        if criterion != "entropy" or tuple(row) in decided:
            # (Entropy in LiteRT is within two float32 ulps of NumPy's,
            # `keras_eexit.criteria`: exact only away from ties.)
            np.testing.assert_array_equal(batch_exit, exit_indices(
                batch_probs, criterion, row[None])[0])
        if tuple(row) in decided:  # off ties: LiteRT decides as Keras
            np.testing.assert_array_equal(batch_exit, decided[tuple(row)])


@pytest.mark.large
def test_int8_signatures_read_each_exits_own_threshold(digits, tmp_path):
    # Each int8 signature decides exactly as the rule on the probabilities
    # it computes; the two may differ at the threshold (they requantise
    # differently: see test_int8_loses_at_most_one_point_on_digits).
    model, arrays, x, _, _ = digits
    x = x[:40]
    for criterion in ("max_softmax", "patience", "static"):
        path = tmp_path / criterion
        export_litert(model, path, mode="early_exit", criterion=criterion,
                      quantization="int8",
                      representative_data=arrays["x_train"][:60])
        run = _signatures(path)
        batch_probs, row_probs = _own_probs(run, x, criterion)
        for row in PER_EXIT[criterion]:
            row = np.float32(row)
            (_, batch_exit), (_, row_exit) = run(x, row)
            expected = exit_indices_of(batch_probs, criterion, row)
            np.testing.assert_array_equal(batch_exit, expected)
            np.testing.assert_array_equal(
                row_exit, exit_indices_of(row_probs, criterion, row))
            assert (row_exit == batch_exit).mean() >= 0.95
            first = exit_indices_of(batch_probs, criterion,
                                    np.full(3, row[0]))
            assert (first != expected).any(), (criterion, row)


def test_each_exit_is_scaled_by_its_own_temperature(digits, tmp_path):
    # Distinct per-exit temperatures baked into the early-exit file (both
    # signatures) and the segment files: each exit's probabilities are
    # softmax(logits / T_k) with its own T_k.
    from keras_eexit.evaluation import collect
    from keras_eexit.inference import ExitPolicy

    model, _, x, y, _ = digits
    x, y = x[:40], y[:40]
    policy = ExitPolicy("max_softmax", (0.6, 0.8, 0.0),
                        temperatures=(0.5, 2.0, 1.5))
    scaled = policy.probabilities(collect(model, (x, y)).probs)
    for mode in ("early_exit", "segments"):
        export_litert(model, tmp_path / mode, mode=mode, policy=policy)
    run = _signatures(tmp_path / "early_exit")
    batch_probs, row_probs = _own_probs(run, x, "max_softmax")
    np.testing.assert_allclose(batch_probs, scaled, atol=1e-5)
    np.testing.assert_allclose(row_probs, scaled, atol=1e-5)
    segments = LiteRTRunner(tmp_path / "segments")
    np.testing.assert_allclose(segments.predict_all(x), scaled, atol=1e-5)
    # The sidecar's thresholds, per exit, decide as the rule on the
    # probabilities the file computes.
    runner = LiteRTRunner(tmp_path / "early_exit")
    _, index = runner.predict(x)
    np.testing.assert_array_equal(index, exit_indices_of(
        batch_probs, "max_softmax", policy.thresholds))
    assert len(np.unique(index)) >= 2


def exit_indices_of(probs, criterion, row):
    """The rule's exits for one row of per-exit thresholds."""
    return criteria.exit_indices(probs, criterion, np.float32(row)[None])[0]


def test_single_sample_and_batch_shapes(digits, exports):
    _, _, x, _, _ = digits
    runner = LiteRTRunner(exports["early_exit", "max_softmax"])
    probs, index = runner.predict(x[0])
    assert probs.shape == (10,) and np.ndim(index) == 0
    probs, index = runner.predict(x[:5], 0.5)
    assert probs.shape == (5, 10) and index.shape == (5,)
    assert index.dtype.kind == "i"
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_early_exit_file_uses_if_and_builtin_ops_only(exports):
    runner = LiteRTRunner(exports["early_exit", "max_softmax"])
    ops = {op["op_name"] for op in runner._interpreters[0]._get_ops_details()}
    assert "IF" in ops
    assert not any(name.startswith("Flex") for name in ops)
    signature = {"inputs": ["input", "thresholds"],
                 "outputs": ["exit_index", "probabilities"]}
    assert runner._interpreters[0].get_signature_list() == {
        "serving_default": signature, "one_row": signature}


def test_sidecar_describes_the_export(digits, exports):
    model = digits[0]
    path = exports["segments", "entropy"]
    meta = json.loads((path / SIDECAR).read_text())
    assert meta["mode"] == "segments" and meta["criterion"] == "entropy"
    assert meta["exit_names"] == model.exit_names
    assert meta["num_classes"] == 10
    assert meta["flops_per_exit"] == model.flops_per_exit()
    assert meta["default_thresholds"] == pytest.approx([0.1] * 3)
    assert meta["quantization"] is None
    assert meta["input"] == {"name": "input", "shape": [8, 8, 1],
                             "dtype": "float32", "batch_size": None}
    assert [f["file"] for f in meta["files"]] == [
        "stage_1.tflite", "stage_2.tflite", "stage_3.tflite"]
    assert meta["files"][1]["inputs"] == ["state_0"]
    assert meta["files"][-1]["outputs"] == ["probabilities"]
    assert sorted(os.listdir(path)) == sorted(
        [SIDECAR] + [f["file"] for f in meta["files"]])
    runner = LiteRTRunner(path)
    np.testing.assert_array_equal(runner.default_thresholds,
                                  np.float32([0.1] * 3))
    _, index = runner.predict(digits[2][:4])  # sidecar default threshold
    assert index.shape == (4,)


# ------------------------------------------------------------ quantisation
@pytest.mark.parametrize("quantization", ["dynamic", "float16"])
def test_weight_quantization_stays_close(digits, tmp_path, quantization):
    model, _, x, y, probs = digits
    export_litert(model, tmp_path, mode="early_exit",
                  quantization=quantization)
    runner = LiteRTRunner(tmp_path)
    assert runner.quantization == quantization
    got, index = runner.predict(x, 0.9)
    expected = criteria.first_exit(probs, "max_softmax", 0.9)
    assert (index == expected).mean() >= 0.97
    float_acc = (probs[expected, np.arange(len(y))].argmax(-1) == y).mean()
    assert (got.argmax(-1) == y).mean() >= float_acc - 0.01


def test_int8_loses_at_most_one_point_on_digits(digits, tmp_path):
    model, arrays, x, y, probs = digits
    calibration = arrays["x_train"][:200]
    export_litert(model, tmp_path / "early", mode="early_exit",
                  quantization="int8", representative_data=calibration)
    export_litert(model, tmp_path / "stages", mode="segments",
                  quantization="int8", representative_data=calibration)
    float_acc = (probs[-1].argmax(-1) == y).mean()
    early = LiteRTRunner(tmp_path / "early")
    final, index = early.predict(x, 1.0)  # never early: the final exit
    assert (index == 2).all()
    assert (final.argmax(-1) == y).mean() >= float_acc - 0.01
    stages = LiteRTRunner(tmp_path / "stages").predict_all(x)
    assert (stages[-1].argmax(-1) == y).mean() >= float_acc - 0.01
    # The early-exit decisions stay close to the float rule, and one row
    # at a time (the single-row path, calibrated on the same samples)
    # decides as the batch, but for a sample whose 8-bit confidence sits
    # on the threshold (the two paths requantise differently).
    for threshold in (0.6, 0.9):
        batch_probs, index = early.predict(x, threshold)
        expected = criteria.first_exit(probs, "max_softmax", threshold)
        assert (index == expected).mean() >= 0.97
        rows = [early.predict(sample, threshold) for sample in x[:60]]
        row_index = np.array([r[1] for r in rows]).ravel()
        assert (row_index == index[:60]).mean() >= 0.95
        agree = row_index == index[:60]
        # (Within one 8-bit step where they agree: the batch path
        # requantises the outputs it concatenates and scatters.)
        np.testing.assert_allclose(np.stack([r[0] for r in rows])[agree],
                                   batch_probs[:60][agree], atol=1 / 128)
    size = os.path.getsize(tmp_path / "early" / "early_exit.tflite")
    assert size < 0.5 * sum(4 * int(np.prod(w.shape)) for w in model.weights)


@pytest.mark.slow  # the digits' twin above runs in CI
def test_int8_loses_at_most_one_point_on_mnist1d(tmp_path):
    keras.utils.set_random_seed(0)
    arrays = load_arrays("mnist1d")
    model = cnn1d(num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=5,
              batch_size=128, verbose=0)
    x, y = arrays["x_test"], arrays["y_test"]
    float_acc = (keras_probs(model, x)[-1].argmax(-1) == y).mean()
    assert float_acc > 0.85
    export_litert(model, tmp_path, mode="per_exit", criterion="entropy",
                  quantization="int8",
                  representative_data=arrays["x_train"][:300])
    int8 = LiteRTRunner(tmp_path).predict_all(x)
    assert (int8[-1].argmax(-1) == y).mean() >= float_acc - 0.01


# ----------------------------------------------------- heads and states
class _DampedHead(keras.layers.Layer):
    """Pooling and N + 1 logits; the last unit is a damping unit."""

    damping = True

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(num_classes + 1)

    def build(self, input_shape):
        self.dense.build((input_shape[0], input_shape[-1]))

    def call(self, inputs):
        return self.dense(keras.ops.mean(inputs, axis=(1, 2)))


def test_damping_units_are_dropped_before_the_softmax(tmp_path):
    keras.utils.set_random_seed(1)
    model = small_cnn(num_classes=4, width=4,
                      head=lambda n, name=None: _DampedHead(n, name=name))
    x = np.random.default_rng(0).random((6, 8, 8, 1)).astype("float32")
    logits = model(x)
    expected = np.stack([
        keras.ops.convert_to_numpy(keras.ops.softmax(logits[n][:, :4]))
        for n in model.exit_names
    ])
    export_litert(model, tmp_path / "stages", mode="segments")
    runner = LiteRTRunner(tmp_path / "stages")
    assert runner.num_classes == 4
    np.testing.assert_allclose(runner.predict_all(x), expected, atol=1e-4)
    export_litert(model, tmp_path / "early", mode="early_exit")
    probs, index = LiteRTRunner(tmp_path / "early").predict(x, 0.0)
    assert (index == 0).all()
    np.testing.assert_allclose(probs, expected[0], atol=1e-4)


def test_damping_head_of_the_toolkit_exports(tmp_path):
    from keras_eexit import layers

    if not hasattr(layers, "DampingHead"):
        pytest.skip("no DampingHead in this version")
    model = small_cnn(num_classes=3, width=4, head="linear", damping=True)
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    logits = model(x)
    export_litert(model, tmp_path, mode="per_exit")
    runner = LiteRTRunner(tmp_path)
    assert runner.num_classes == 3
    expected = keras.ops.convert_to_numpy(
        keras.ops.softmax(logits[model.exit_names[-1]][:, :3]))
    np.testing.assert_allclose(runner.predict_all(x)[-1], expected,
                               atol=1e-4)


def test_tuple_states_are_flattened_into_named_tensors(tmp_path):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="c2")(a)
    c = keras.layers.Conv2D(4, 3, padding="same", name="c3")(b)
    out = keras.layers.Add(name="skip")([a, c])  # `a` crosses both cuts
    model = MultiExitModel.from_backbone(
        keras.Model(inputs, out), taps=["c2"], num_classes=3)
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    expected = keras_probs(model, x)
    export_litert(model, tmp_path, mode="segments")
    meta = json.loads((tmp_path / SIDECAR).read_text())
    assert meta["files"][0]["outputs"] == [
        "probabilities", "state_0", "state_1"]
    assert meta["files"][1]["inputs"] == ["state_0", "state_1"]
    runner = LiteRTRunner(tmp_path)
    np.testing.assert_allclose(runner.predict_all(x), expected, atol=1e-4)
    export_litert(model, tmp_path / "early", mode="early_exit")
    for threshold, k in ((0.0, 0), (1.0, 1)):
        probs, index = LiteRTRunner(tmp_path / "early").predict(x, threshold)
        assert (index == k).all()
        np.testing.assert_allclose(probs, expected[k], atol=1e-4)


def test_mixed_precision_model_exports_in_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(3)
        model = small_cnn(num_classes=5, width=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    expected = keras_probs(model, x)
    for mode in ("early_exit", "segments"):
        export_litert(model, tmp_path / mode, mode=mode)
        probs, index = LiteRTRunner(tmp_path / mode).predict(x, 1.0)
        assert (index == 2).all()
        np.testing.assert_allclose(probs, expected[-1], atol=2e-3)
    # The model's own policies are restored.
    assert model.segments[0].layers[-1].dtype_policy.name == "mixed_float16"


# ------------------------------------------------------------ atomic files
def test_interrupted_export_leaves_previous_file_intact(
        digits, tmp_path, monkeypatch):
    model = digits[0]
    export_litert(model, tmp_path, mode="early_exit")
    target = tmp_path / "early_exit.tflite"
    before = target.read_bytes()
    sidecar_before = (tmp_path / SIDECAR).read_text()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="early_exit.tflite"):
        export_litert(model, tmp_path, mode="early_exit",
                      quantization="float16")
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert (tmp_path / SIDECAR).read_text() == sidecar_before
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["early_exit.tflite", SIDECAR])  # no temporary files left
    LiteRTRunner(tmp_path).predict(digits[2][:2], 0.5)


def test_runner_refuses_files_from_another_export(digits, tmp_path):
    model = digits[0]
    export_litert(model, tmp_path / "a", mode="per_exit")
    export_litert(model, tmp_path / "b", mode="per_exit",
                  quantization="float16")
    (tmp_path / "a" / "exit_2.tflite").write_bytes(
        (tmp_path / "b" / "exit_2.tflite").read_bytes())
    with pytest.raises(ValueError, match="SHA-256"):
        LiteRTRunner(tmp_path / "a")


def test_new_export_removes_files_of_the_previous_one(digits, tmp_path):
    model = digits[0]
    export_litert(model, tmp_path, mode="per_exit")
    export_litert(model, tmp_path, mode="early_exit")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["early_exit.tflite", SIDECAR])
