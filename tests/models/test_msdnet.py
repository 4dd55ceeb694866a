"""MSDNet for CIFAR: published sizes, structure, saving, training, export."""

import keras
import numpy as np
import pytest

from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.models.msdnet import _block_steps
from keras_eexit.models.msdnet import _plan
from keras_eexit.models.msdnet import msdnet_cifar
from tests.models.multi_scale_checks import check_full_model_outputs
from tests.models.multi_scale_checks import check_published_costs

# Huang et al. (ICLR 2018), CIFAR-100 MSDNet with 7 classifiers: cumulative
# parameters and multiply-adds per exit (millions), as the authors'
# op_counter.py gives them.
PUBLISHED_PARAMS = [0.30, 0.65, 1.11, 1.73, 2.38, 3.05, 4.00]
PUBLISHED_MACS = [6.86, 14.35, 27.29, 48.45, 76.43, 108.90, 137.30]

# Reduced width and depth: blocks of 1, 2 and 3 layers (6 in all), so that
# layers 3 and 5 drop a scale; the stages leave 3, 2 and 1 scales, and
# every kind of layer (first layer, dense with and without the strided
# path, transition) is present.
SMALL = {"num_classes": 5, "input_shape": (16, 16, 3), "channels": 4,
         "growth_rate": 2, "head_filters": 8, "exits": 3}


@pytest.fixture(scope="module")
def full_model():
    keras.utils.set_random_seed(0)
    return msdnet_cifar(num_classes=100, exits=7)


def test_costs_match_the_published_cifar100_table(full_model):
    # Parameters in fact within 1%.
    check_published_costs(full_model, PUBLISHED_PARAMS, PUBLISHED_MACS,
                          macs_floor=0.985, params_rtol=0.01)


def test_full_model_structure(full_model):
    check_full_model_outputs(full_model, num_exits=7)
    # The state lists the scales coarsest first; the heads read 8x8 maps.
    # Layers 11 (block 5) and 21 (block 6) drop the finest scale.
    state = keras.KerasTensor((1, 32, 32, 3))
    resolutions = []
    for segment in full_model.segments:
        state = segment(state)
        state = state if isinstance(state, (list, tuple)) else [state]
        resolutions.append([t.shape[1] for t in state])
    assert resolutions == [[8, 16, 32]] * 4 + [[8, 16], [8], [8]]


def test_layers_follow_the_reference_channels(full_model):
    # Kernel shapes of the first layers, as the authors' PyTorch log
    # (kalviny/MSDNet-PyTorch, check_msdnet/log.txt) prints them.
    stage = full_model.segments[0]

    def kernel(name):
        return tuple(stage.get_layer(f"{name}_conv").kernel.shape)

    assert kernel("first_s1") == (3, 3, 3, 16)
    assert kernel("first_s2") == (3, 3, 16, 32)
    assert kernel("first_s3") == (3, 3, 32, 64)
    assert kernel("layer1_s1_normal_1x1") == (1, 1, 16, 6)
    assert kernel("layer1_s2_down_1x1") == (1, 1, 16, 6)
    assert kernel("layer1_s2_normal_1x1") == (1, 1, 32, 12)
    assert kernel("layer1_s3_down_1x1") == (1, 1, 32, 24)
    assert kernel("layer1_s3_down_3x3") == (3, 3, 24, 12)
    assert kernel("layer1_s3_normal_3x3") == (3, 3, 48, 12)
    assert stage.get_layer("layer1_s3_down_3x3_conv").strides == (2, 2)
    second = full_model.segments[1]
    assert tuple(
        second.get_layer("layer2_s1_normal_1x1_conv").kernel.shape
    ) == (1, 1, 22, 6)
    # Layer 11 drops scale 1 and is followed by a transition that halves
    # the 16 + 11 * 6 = 82 channels per growth factor (to 41).
    fifth = full_model.segments[4]
    assert tuple(
        fifth.get_layer("layer11_s2_trans_conv").kernel.shape
    ) == (1, 1, 164, 82)
    assert tuple(
        fifth.get_layer("layer11_s3_trans_conv").kernel.shape
    ) == (1, 1, 328, 164)


def test_block_plan_follows_the_reference():
    assert _block_steps(7, 1, 1, "lin_grow") == [1, 2, 3, 4, 5, 6, 7]
    assert _block_steps(10, 4, 2, "even") == [4] + [2] * 9
    plan = _plan(3, _block_steps(7, 1, 1, "lin_grow"))
    flat = [pair for block in plan for pair in block]
    assert len(flat) == 28
    drops = [n for n, (i, o) in enumerate(flat, 1) if i > o]
    assert drops == [11, 21]
    assert [o for _, o in flat] == [3] * 10 + [2] * 10 + [1] * 8
    # Each layer reads the scales the previous one left.
    assert all(a[1] == b[0] for a, b in zip(flat, flat[1:]))


def test_head_is_the_reference_classifier():
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 24))
    x = x.astype("float32")
    head = MSDNetHead(10, filters=16, name="exit_1")
    out = head(x)
    assert tuple(out.shape) == (3, 10)
    # conv 3x3 24->16, conv 3x3 16->16 (no bias), two BNs (4 each), dense.
    assert head.count_params() == (9 * 24 * 16 + 9 * 16 * 16
                                   + 2 * 4 * 16 + 16 * 10 + 10)
    config = head.get_config()
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(head))
    assert type(clone) is MSDNetHead
    assert (clone.filters, clone.bn_momentum) == (16, 0.9)
    assert config["num_classes"] == 10
    with pytest.raises(ValueError, match="bn_momentum"):
        MSDNetHead(10, bn_momentum=1.0)


def test_bn_momentum_reaches_every_layer():
    model = msdnet_cifar(bn_momentum=0.5, **SMALL)
    momenta = {
        layer.momentum
        for part in model.segments + model.heads
        for layer in part._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.5}


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"exits": 0}, "exits"),
        ({"exits": True}, "exits"),
        ({"num_classes": 1}, "num_classes"),
        ({"growth_factors": ()}, "growth_factors"),
        ({"bottleneck_factors": (1, 2)}, "bottleneck_factors"),
        ({"bottleneck_factors": (1, 2, 0)}, "bottleneck_factors"),
        ({"growth_rate": 3, "growth_factors": (1, 1, 2)}, "growth_rate"),
        ({"input_shape": (3, 3, 3)}, "input_shape"),
        ({"channels": 0}, "channels"),
        ({"base": 0}, "base"),
        ({"bottleneck": 1}, "bottleneck"),
        ({"reduction": 1.5}, "reduction"),
        ({"reduction": 0.01, "channels": 4, "growth_rate": 2,
          "exits": 2}, "reduction"),
        ({"bn_momentum": -0.1}, "bn_momentum"),
        ({"bn_momentum": 1.0}, "bn_momentum"),
        ({"bn_momentum": True}, "bn_momentum"),
        ({"head_filters": 0}, "head_filters"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        msdnet_cifar(**kwargs)


def test_bad_step_mode_lists_choices():
    with pytest.raises(ValueError, match="'even', 'lin_grow'"):
        msdnet_cifar(step_mode="linear")


def test_variants_build():
    # The PyTorch README's "anytime" command (even steps), no bottleneck,
    # no transition layers, two scales: all reduced in width.
    keras.utils.set_random_seed(0)
    common = {"num_classes": 3, "input_shape": (8, 8, 3), "channels": 2,
              "growth_rate": 2, "head_filters": 4}
    for kwargs in [
        {"exits": 2, "base": 2, "step": 2, "step_mode": "even"},
        {"exits": 2, "bottleneck": False, "reduction": 0.0},
        {"exits": 3, "growth_factors": (1, 2),
         "bottleneck_factors": (1, 2)},
    ]:
        model = msdnet_cifar(**common, **kwargs)
        out = model(np.zeros((1, 8, 8, 3), "float32"))
        assert [tuple(v.shape) for v in out.values()] == [
            (1, 3)] * kwargs["exits"]
    unreduced = msdnet_cifar(**common, exits=2, reduction=0.0)
    assert not any("trans" in layer.name
                   for s in unreduced.segments for layer in s.layers)


