"""RANet for CIFAR: published sizes, structure, saving, training, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.layers import AlignedBilinearResize
from keras_eexit.models.ranet import _plan
from keras_eexit.models.ranet import ranet_cifar
from tests.models.multi_scale_checks import check_full_model_outputs
from tests.models.multi_scale_checks import check_published_costs

# Yang et al. (CVPR 2020), CIFAR-100 RANet: cumulative parameters and
# multiply-adds per exit (millions), as the authors' op_counter.py gives for
# the README configuration.
PUBLISHED_PARAMS = [0.36, 0.90, 1.30, 1.80, 2.19, 2.62]
PUBLISHED_MACS = [8.37, 21.79, 32.88, 41.57, 53.28, 58.99]


@pytest.fixture(scope="module")
def full_model():
    keras.utils.set_random_seed(0)
    return ranet_cifar(num_classes=100, exits=6)


def test_costs_match_the_published_cifar100_table(full_model):
    check_published_costs(full_model, PUBLISHED_PARAMS, PUBLISHED_MACS,
                          macs_floor=0.99)


def test_full_model_structure(full_model):
    check_full_model_outputs(full_model, num_exits=6)
    # Every exit reads 8x8 features (the coarsest resolution); the state
    # carries the finer sub-networks' inputs and the fused features.
    state = keras.KerasTensor((1, 32, 32, 3))
    shapes, sizes = [], []
    for segment in full_model.segments:
        state = segment(state)
        first = state[0] if isinstance(state, (list, tuple)) else state
        shapes.append(tuple(first.shape[1:3]))
        sizes.append(len(state) if isinstance(state, (list, tuple)) else 1)
    assert shapes == [(8, 8)] * 6
    # Stage 1: x, the 16x16 and 32x32 base features, 3 tensors of block 1.
    assert sizes[0] == 1 + 2 + 3
    assert sizes[-1] == 1


def test_aligned_bilinear_resize_matches_align_corners():
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 5)).astype("float32")
    for size in [(7, 5), (2, 2), (4, 3), (1, 6)]:
        layer = AlignedBilinearResize(*size)
        got = np.array(layer(x))
        expected = tf.compat.v1.image.resize_bilinear(
            x, size, align_corners=True).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert layer.compute_output_shape(x.shape) == (2,) + size + (5,)
    config = AlignedBilinearResize(7, 5, name="r").get_config()
    assert AlignedBilinearResize.from_config(config).height == 7


def test_head_follows_the_reference_classifier():
    head = MSDNetHead(10, filters=16, name="exit_1")
    out = head(np.zeros((3, 8, 8, 24), "float32"))
    assert tuple(out.shape) == (3, 10)
    # conv 3x3 24->16, conv 3x3 16->16 (no bias), two BNs (4 each), dense.
    assert head.count_params() == (9 * 24 * 16 + 9 * 16 * 16
                                   + 2 * 4 * 16 + 16 * 10 + 10)
    clone = MSDNetHead.from_config(head.get_config())
    assert (clone.filters, clone.bn_momentum) == (16, 0.9)
    with pytest.raises(ValueError, match="input_shape"):
        MSDNetHead(10)(np.zeros((3, 24), "float32"))
    with pytest.raises(ValueError, match="bn_momentum"):
        MSDNetHead(10, bn_momentum=1.0)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"exits": 5}, "exits"),
        ({"exits": True}, "exits"),
        ({"num_classes": 1}, "num_classes"),
        ({"scales": (2, 3)}, "scales"),
        ({"scales": (1, 3, 4)}, "scales"),
        ({"growth_factors": (4, 2)}, "growth_factors"),
        ({"bottleneck_factors": (4, 2, 0)}, "bottleneck_factors"),
        ({"input_shape": (4, 4, 3)}, "input_shape"),
        ({"channels": 0}, "channels"),
        ({"compress_factor": 0.0}, "compress_factor"),
        ({"compress_factor": 0.1}, "compress_factor"),
        ({"reduction": 1.5}, "reduction"),
        ({"bn_momentum": -0.1}, "bn_momentum"),
        ({"bn_momentum": 1.0}, "bn_momentum"),
        ({"bn_momentum": True}, "bn_momentum"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ranet_cifar(**kwargs)


def test_bad_step_mode_lists_choices():
    with pytest.raises(ValueError, match="'even', 'lg'"):
        ranet_cifar(step_mode="log")


def test_block_plan_follows_the_reference():
    # README configuration: "lg" steps grow by 2 with each new exit block
    # (counted across sub-networks); fusion blocks reuse the layer counts
    # of the blocks they fuse; a sub-network at level s has s - 1 strided
    # fusion blocks, each followed by a transition.
    plan = _plan([1, 2, 3], base_blocks=2, block_step=2, step=2,
                 step_mode="lg")
    summary = [[(b["kind"], b["layers"], b["down"], b["trans"])
                for b in blocks] for blocks in plan]
    assert summary == [
        [("norm", 2, False, False), ("norm", 4, False, False)],
        [("up", 2, False, False), ("up", 4, True, True),
         ("norm", 6, False, False), ("norm", 8, False, False)],
        [("up", 2, False, False), ("up", 4, True, True),
         ("up", 6, False, False), ("up", 8, True, True),
         ("norm", 10, False, False), ("norm", 12, False, False)],
    ]
    even = _plan([1, 2, 3], 2, 2, 4, "even")
    assert {b["layers"] for blocks in even for b in blocks} == {4}


def test_four_subnetworks_build():
    # The layout of the reference's train_cifar.sh (`1-2-3-3`: two
    # sub-networks at the finest resolution), 2 + 3 * 2 = 8 exits.
    keras.utils.set_random_seed(0)
    model = ranet_cifar(exits=8, scales=(1, 2, 3, 3),
                        growth_factors=(4, 2, 1, 1),
                        bottleneck_factors=(4, 2, 1, 1), channels=4,
                        growth_rate=4, head_filters=8, step=1,
                        step_mode="even", input_shape=(16, 16, 3),
                        num_classes=3)
    out = model(np.zeros((1, 16, 16, 3), "float32"))
    assert [tuple(v.shape) for v in out.values()] == [(1, 3)] * 8


