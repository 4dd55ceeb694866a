"""The 5-exit ImageNet MSDNet: published sizes, both FLOP counters, layout."""

import math

import keras
import numpy as np
import pytest

from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.models import costs
from keras_eexit.models import get_model
from keras_eexit.models import msdnet_imagenet

# Paper 004 (the damping paper), Table 2 (lines 433-435): the 5-exit
# MSDNet on ImageNet, cumulative per exit. The FLOPs are the authors'
# op_counter.py figures (kalviny/MSDNet-PyTorch): multiply-adds of
# convolutions and linear layers plus one operation per ReLU output, per
# pooling window element and per linear bias.
PUBLISHED_PARAMS_M = [4.24, 8.77, 13.07, 16.75, 23.96]
PUBLISHED_GFLOPS = [0.34, 0.69, 1.01, 1.25, 1.36]


@pytest.fixture(scope="module")
def full_model():
    keras.utils.set_random_seed(0)
    return msdnet_imagenet()


def _op_counter_extras(model):
    """What op_counter.py counts beyond multiply-adds, cumulative per exit:
    ReLU outputs, max-pooling windows, the heads' ReLUs, `AvgPool2d(2)`
    and linear biases."""
    extras, total = [], 0
    for segment, head in zip(model.segments, model.heads):
        for layer in segment.layers:
            size = math.prod(layer.output.shape[1:])
            if isinstance(layer, keras.layers.ReLU):
                total += size
            elif isinstance(layer, keras.layers.MaxPooling2D):
                total += size * math.prod(layer.pool_size)
        side, width = segment.outputs[0].shape[1], head.filters
        for _ in range(2):  # 3x3 stride-2 conv blocks, padding 1
            side = (side - 1) // 2 + 1
            total += side * side * width
        assert side == 2  # AvgPool2d(2) then reads the whole map
        total += 4 * width + head.num_classes
        extras.append(total)
    return extras


def _trainable_params(model):
    """Cumulative PyTorch-style counts: no moving statistics."""
    counts, total = [], 0
    for part in zip(model.segments, model.heads):
        total += sum(math.prod(w.shape) for p in part
                     for w in p.trainable_weights)
        counts.append(total)
    return counts


def test_parameters_match_the_published_table(full_model):
    got = np.array(_trainable_params(full_model)) / 1e6
    np.testing.assert_array_equal(np.round(got, 2), PUBLISHED_PARAMS_M)
    # Moving statistics of the batch normalizations add 0.1-0.2%.
    np.testing.assert_allclose(
        np.array(full_model.params_per_exit()) / 1e6, PUBLISHED_PARAMS_M,
        rtol=0.003)


def test_flops_match_the_published_table(full_model):
    macs = np.array(full_model.macs_per_exit())
    counted = macs + np.array(_op_counter_extras(full_model))
    # The authors' count, rounded as published, within 1%.
    np.testing.assert_array_equal(np.round(counted / 1e9, 2),
                                  PUBLISHED_GFLOPS)
    np.testing.assert_allclose(counted / 1e9, PUBLISHED_GFLOPS, rtol=0.01)
    # Our multiply-adds alone: below, by the ReLUs and pooling only.
    assert (macs / 1e9 < PUBLISHED_GFLOPS).all()
    assert (macs / 1e9 > 0.985 * np.array(PUBLISHED_GFLOPS)).all()
    assert full_model.flops_per_exit() == [2 * m for m in macs]


def test_analytic_counter_agrees_with_the_tf_graph(full_model, monkeypatch):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TF-graph counter needs the TF backend")
    per_counter = []
    for analytic in (False, True):
        monkeypatch.setattr(costs, "uses_tensorflow_graph",
                            lambda analytic=analytic: not analytic)
        stages = costs.compute_stage_costs(full_model, "keras_eexit")
        per_counter.append((stages.segment_flops, stages.head_flops))
    assert per_counter[0] == per_counter[1]


def test_layout_follows_the_reference(full_model):
    assert full_model.name == "msdnet_imagenet"
    assert full_model.exit_names == [f"exit_{k}" for k in range(1, 6)]
    # Scales (coarsest first) and channels after each block: blocks of 4
    # layers; layers 6, 11 and 16 drop a scale, then a transition.
    layouts = [[tuple(t.shape[1:]) for t in s.outputs]
               for s in full_model.segments]
    assert layouts == [
        [(7, 7, 384), (14, 14, 384), (28, 28, 192), (56, 56, 96)],
        [(7, 7, 384), (14, 14, 384), (28, 28, 192)],
        [(7, 7, 352), (14, 14, 352)],
        [(7, 7, 304)],
        [(7, 7, 560)],
    ]
    stage = full_model.segments[0]
    stem = stage.get_layer("first_s1_conv")
    assert tuple(stem.kernel.shape) == (7, 7, 3, 32)
    assert stem.strides == (2, 2) and stem.use_bias
    assert stage.get_layer("first_s1_pool").pool_size == (3, 3)
    assert tuple(stage.get_layer("first_s2_conv").kernel.shape) == (
        3, 3, 32, 64)
    # Scale 2 grows by 16 * 2 maps, half from scale 1; bottlenecks are
    # min(in, bnFactor * out) wide: min(64, 2 * 16) and min(32, 1 * 16).
    assert tuple(stage.get_layer(
        "layer1_s2_normal_1x1_conv").kernel.shape) == (1, 1, 64, 32)
    assert tuple(stage.get_layer(
        "layer1_s2_down_1x1_conv").kernel.shape) == (1, 1, 32, 16)
    assert tuple(stage.get_layer(
        "layer1_s2_down_3x3_conv").kernel.shape) == (3, 3, 16, 16)
    assert all(isinstance(h, MSDNetHead) for h in full_model.heads)
    assert [h.filters for h in full_model.heads] == [384, 384, 352, 304,
                                                     560]


def test_small_instance_runs_saves_and_keeps_its_head_width(tmp_path):
    # (The zoo contract's training and export checks run with -m slow.)
    keras.utils.set_random_seed(0)
    model = get_model("msdnet_imagenet", num_classes=4, exits=2,
                      input_shape=(32, 32, 3), channels=4, growth_rate=4,
                      base=1, step=1, head_filters=8)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3))
    out = model(x.astype("float32"))
    assert [tuple(v.shape) for v in out.values()] == [(2, 4), (2, 4)]
    assert [h.filters for h in model.heads] == [8, 8]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.name == "msdnet_imagenet"
    np.testing.assert_allclose(loaded(x.astype("float32"))["exit_2"],
                               out["exit_2"], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"input_shape": (16, 16, 3)}, "input_shape"),
        ({"exits": 0}, "exits"),
        ({"head_filters": 0}, "head_filters"),
        ({"growth_factors": (1, 2)}, "bottleneck_factors"),
        ({"step_mode": "linear"}, "step_mode 'linear'"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`?{argument}`?"):
        msdnet_imagenet(**kwargs)
