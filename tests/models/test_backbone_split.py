"""Cutting functional backbones into segments (`from_backbone`)."""

import keras
import numpy as np
import pytest

from keras_eexit import MultiExitModel
from keras_eexit.models import split_backbone


def _skip_net():
    """conv1 -> conv2 -> add(conv1, conv2) -> conv3: a skip crosses conv2."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    b = keras.layers.Conv2D(8, 3, padding="same", name="c2")(a)
    c = keras.layers.Add(name="add")([a, b])
    d = keras.layers.Conv2D(8, 3, padding="same", name="c3")(c)
    return keras.Model(inp, d, name="skipnet")


def test_segments_compose_to_the_backbone():
    net = _skip_net()
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(
        "float32")
    for taps in (["c1"], ["c2"], ["c1", "add"]):
        segments = split_backbone(net, taps)
        assert len(segments) == len(taps) + 1
        state = x
        for segment in segments:
            state = segment(state)
        np.testing.assert_allclose(state, net(x), atol=1e-5)


def test_skip_connection_crossing_a_cut_is_carried_in_the_state():
    segments = split_backbone(_skip_net(), ["c2"])
    assert len(segments[0].outputs) == 2  # the tap, then conv1's output
    assert len(segments[1].inputs) == 2


def test_weights_are_shared_with_the_backbone():
    net = _skip_net()
    model = MultiExitModel.from_backbone(net, ["c2"], num_classes=3)
    conv = net.get_layer("c1")
    conv.kernel.assign(conv.kernel * 0 + 1.0)
    found = [w for w in model.weights if w is conv.kernel]
    assert found


def test_from_backbone_heads_named_after_exits(tmp_path):
    model = MultiExitModel.from_backbone(_skip_net(), ["c1", "add"],
                                         num_classes=5, head="linear")
    assert model.exit_names == ["exit_1", "exit_2", "exit_3"]
    assert [h.name for h in model.heads] == model.exit_names
    x = np.zeros((1, 16, 16, 3), "float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for name in model.exit_names:
        np.testing.assert_allclose(model(x)[name], loaded(x)[name],
                                   atol=1e-6)


def test_mobilenet_v2_retrofit():
    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3))
    model = MultiExitModel.from_backbone(
        backbone, ["block_3_expand_relu", "block_6_expand_relu"],
        num_classes=10)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    out = model(x)
    assert [tuple(v.shape) for v in out.values()] == [(2, 10)] * 3
    state = x
    for segment in model.segments:
        state = segment(state)
    first = state[0] if isinstance(state, list) else state
    np.testing.assert_allclose(first, backbone(x), atol=1e-4)


def test_sequential_backbone():
    net = keras.Sequential([
        keras.Input((10,)), keras.layers.Dense(6, name="d1"),
        keras.layers.Dense(6, name="d2"), keras.layers.Dense(6, name="d3")])
    model = MultiExitModel.from_backbone(net, ["d1"], num_classes=2)
    assert model.num_exits == 2


# ----------------------------------------------------------- bad input
def test_tap_not_found_lists_near_names():
    with pytest.raises(ValueError, match=r"Tap layer 'c4' not found.*'c1'"):
        split_backbone(_skip_net(), ["c4"])


def test_taps_out_of_order():
    with pytest.raises(ValueError, match="forward order"):
        split_backbone(_skip_net(), ["c2", "c1"])


def test_tap_on_the_output_is_refused():
    with pytest.raises(ValueError, match="already gets the final exit"):
        split_backbone(_skip_net(), ["c3"])


def test_bad_taps_and_classes():
    with pytest.raises(ValueError, match="non-empty list"):
        split_backbone(_skip_net(), "c1")
    with pytest.raises(ValueError, match="distinct"):
        split_backbone(_skip_net(), ["c1", "c1"])
    with pytest.raises(ValueError, match="num_classes"):
        MultiExitModel.from_backbone(_skip_net(), ["c1"], num_classes=1)
    with pytest.raises(ValueError, match="Unknown head"):
        MultiExitModel.from_backbone(_skip_net(), ["c1"], num_classes=3,
                                     head="nope")


def test_subclassed_backbone_is_refused():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed model"):
        split_backbone(Net(), ["x"])
