"""numerical_rank against NumPy; the NumericalRank callback's bookkeeping."""

import numpy as np
import pytest

from keras_eexit.callbacks import NumericalRank
from keras_eexit.callbacks import numerical_rank
from keras_eexit.callbacks.numerical_rank import rank_tolerance


def test_equals_numpy_on_known_low_rank_matrices():
    rng = np.random.default_rng(1)
    for rank in (1, 4, 9):
        matrix = rng.normal(size=(60, rank)) @ rng.normal(size=(rank, 30))
        assert numerical_rank(matrix) == rank == np.linalg.matrix_rank(
            matrix)
    tensor = (rng.normal(size=(40, 2)) @ rng.normal(size=(2, 48))).reshape(
        40, 4, 4, 3)
    assert numerical_rank(tensor) == 2


def test_float32_activations_use_float32_epsilon():
    rng = np.random.default_rng(0)
    low = (rng.normal(size=(200, 3)) @ rng.normal(size=(3, 100))).astype(
        "float32")
    # float64's epsilon would count float32 rounding noise as rank.
    assert np.linalg.matrix_rank(low.astype(np.float64)) > 3
    assert numerical_rank(low) == 3 == np.linalg.matrix_rank(low)
    values = np.linalg.svd(low.astype(np.float64), compute_uv=False)
    assert rank_tolerance(values, low.shape, low.dtype) == pytest.approx(
        values.max() * 200 * np.finfo(np.float32).eps)
    assert numerical_rank(low, tol=0.0) > 3  # an explicit tolerance wins


def test_feature_subset_is_fixed_by_the_seed():
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(30, 500))
    wide[:, ::2] = 0.0  # half the columns carry nothing
    ranks = {numerical_rank(wide, max_features=20, seed=s) for s in range(5)}
    assert all(r <= 20 for r in ranks)
    assert numerical_rank(wide, max_features=20, seed=3) == numerical_rank(
        wide, max_features=20, seed=3)
    keep = np.sort(np.random.default_rng(3).choice(500, 20, replace=False))
    assert numerical_rank(wide, max_features=20, seed=3) == (
        np.linalg.matrix_rank(wide[:, keep]))
    with pytest.raises(ValueError, match="at least one sample"):
        numerical_rank(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="max_features"):
        numerical_rank(wide, max_features=0)


def test_callback_every_and_segment_outputs(model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    rank = NumericalRank(x, layers="segments", max_features=64, every=2)
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[rank])
    assert rank.epochs == [1, 3]
    assert set(rank.ranks) == {"segment_1", "segment_2", "segment_3"}
    assert all(len(v) == 2 for v in rank.ranks.values())
    state, expected = x, {}
    for k, segment in enumerate(model.segments):
        state = segment(state, training=False)
        expected[f"segment_{k + 1}"] = numerical_rank(np.asarray(state), 64)
    assert rank.measure() == expected == rank.history[-1]


def test_default_is_d5_pre_activation_layers_with_6000_features():
    """Kubaty et al. D.5: outputs of the operations (convolutions, dense
    layers) before BatchNorm and activation, 6000 sampled features."""
    from keras_eexit import models
    from keras_eexit.callbacks.numerical_rank import feature_subset
    from keras_eexit.callbacks.numerical_rank import layer_ranks
    from keras_eexit.callbacks.numerical_rank import measured_layers

    model = models.get_model("small_cnn", width=4)
    x = np.random.default_rng(0).random((40, 8, 8, 1)).astype("float32")
    model(x)
    assert measured_layers(model) == ["stage1_conv", "stage2_conv",
                                      "stage3_conv"]
    assert measured_layers(model, "post_activation") == [
        "stage1_out", "stage2_out", "stage3_out"]
    rank = NumericalRank(x)
    assert rank.max_features == 6000
    rank.set_model(model)
    ranks = rank.measure()
    conv = model.segments[0].get_layer("stage1_conv")
    assert ranks["stage1_conv"] == numerical_rank(np.asarray(conv(x)))
    # Columns depend on the column count only: the same for every model.
    np.testing.assert_array_equal(feature_subset(10_000, 6000, 0),
                                  feature_subset(10_000, 6000, 0))
    assert len(feature_subset(10_000, 6000)) == 6000
    small = layer_ranks(model, x, max_features=8, batch_size=16)
    assert all(r <= 8 for r in small.values())


def test_sequential_segments_are_measured_layer_by_layer(model_factory,
                                                         tiny_data):
    from keras_eexit.callbacks.numerical_rank import layer_ranks

    x, _ = tiny_data
    model = model_factory()
    model(x)
    ranks = layer_ranks(model, x, max_features=64)
    convs = [layer for segment in model.segments for layer in segment.layers
             if isinstance(layer, __import__("keras").layers.Conv2D)]
    assert list(ranks) == [layer.name for layer in convs]
    assert ranks[convs[0].name] == numerical_rank(np.asarray(convs[0](x)),
                                                  64)
