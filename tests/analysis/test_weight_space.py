"""Weight space, batched losses, directions, landscapes and planes."""

import keras
import numpy as np
import pytest

from keras_eexit import models
from keras_eexit.compat import flatten_layers
from keras_eexit.analysis import LossEvaluator
from keras_eexit.analysis import WeightSpace
from keras_eexit.analysis import connectivity_plane
from keras_eexit.analysis import linear_path
from keras_eexit.analysis import loss_landscape
from keras_eexit.analysis import random_direction
from keras_eexit.analysis.weight_space import as_arrays


@pytest.fixture(scope="module")
def setup():
    keras.utils.set_random_seed(0)
    model = models.get_model("small_cnn", width=4, num_classes=5)
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 5, 40)
    model(x)
    return model, x, y


def _direct_losses(model, x, y):
    out = model(x, training=False)
    return np.array([float(np.mean(keras.losses.sparse_categorical_crossentropy(
        y, out[name], from_logits=True))) for name in model.exit_names])


def test_batched_losses_equal_assigning_the_weights(setup):
    model, x, y = setup
    space = WeightSpace(model)
    theta = space.vector()
    other = theta + 0.05 * np.random.default_rng(1).normal(
        size=theta.shape).astype("float32") * space.mask(
            lambda s: s.trainable)
    evaluator = LossEvaluator(space, (x, y), weight_batch=3, data_batch=16)
    losses = evaluator(np.stack([theta, other]))  # padded batch, 3 chunks
    np.testing.assert_allclose(losses[0], _direct_losses(model, x, y),
                               rtol=1e-5)
    space.assign(other)
    try:
        np.testing.assert_allclose(losses[1], _direct_losses(model, x, y),
                                   rtol=1e-5)
    finally:
        space.assign(theta)
    np.testing.assert_array_equal(space.vector(), theta)  # unchanged


def test_filter_normalised_direction(setup):
    model, _, _ = setup
    space = WeightSpace(model)
    theta = space.vector()
    d = random_direction(space, theta, seed=3)
    for slot in space.slots:
        part = d[slot.start:slot.stop].reshape(slot.shape)
        if not slot.trainable or len(slot.shape) == 1:
            assert not part.any()  # BN statistics, biases, BN scale/offset
            continue
        w = theta[slot.start:slot.stop].reshape(slot.shape)
        np.testing.assert_allclose(
            np.linalg.norm(part.reshape(-1, slot.shape[-1]), axis=0),
            np.linalg.norm(w.reshape(-1, slot.shape[-1]), axis=0),
            rtol=1e-4)
    assert not np.array_equal(d, random_direction(space, theta, seed=4))


def test_directions_of_the_authors_landscape_code(setup):
    """kamadforge/early-exit-benchmark's `random_plane` with the
    `loss_landscapes` library: every trainable parameter moves, filters
    are divided by the weights' filter norms, the direction has the
    model's norm."""
    model, x, y = setup
    space = WeightSpace(model)
    theta = space.vector()
    d = random_direction(space, theta, seed=3,
                         normalization="loss_landscapes")
    raw = np.random.default_rng(3).standard_normal(space.size)
    trainable = space.mask(lambda s: s.trainable)
    assert not d[~trainable].any()  # moving statistics stay
    np.testing.assert_allclose(np.linalg.norm(d),
                               np.linalg.norm(theta[trainable]), rtol=1e-5)
    scale, moving = None, []
    for slot in space.slots:
        if not slot.trainable:
            continue
        part = d[slot.start:slot.stop].reshape(slot.shape)
        w = theta[slot.start:slot.stop].reshape(slot.shape)
        r = raw[slot.start:slot.stop].reshape(slot.shape)
        if len(slot.shape) == 1:  # biases, BN scale/offset: per element
            norms = np.abs(w)
        else:  # one factor per output filter, the inverse of its norm
            norms = np.broadcast_to(np.linalg.norm(
                w.reshape(-1, slot.shape[-1]), axis=0), slot.shape)
        assert not part[norms == 0].any()  # zero (untrained) filters stay
        ratio = (part * norms / r)[norms > 0]
        moving.append(slot.role if len(slot.shape) == 1 and ratio.size
                      else None)
        if ratio.size:
            scale = ratio[0] if scale is None else scale
            np.testing.assert_allclose(ratio, scale, rtol=1e-3)
    assert "gamma" in moving  # BatchNorm's scale moves
    landscape = loss_landscape(model, (x, y), resolution=3, span=0.1,
                               normalization="loss_landscapes")
    assert landscape.to_dict()["normalization"] == "loss_landscapes"
    np.testing.assert_allclose(landscape.losses[:, 1, 1],
                               _direct_losses(model, x, y), rtol=1e-5)
    with pytest.raises(ValueError, match="normalization"):
        random_direction(space, theta, normalization="layer")


def test_landscape_centre_and_self_interpolation_is_flat(setup):
    model, x, y = setup
    landscape = loss_landscape(model, (x, y), resolution=5, span=0.5)
    assert landscape.losses.shape == (3, 5, 5)
    np.testing.assert_allclose(landscape.losses[:, 2, 2],
                               _direct_losses(model, x, y), rtol=1e-5)
    np.testing.assert_allclose(landscape.loss(1), landscape.losses[0])
    np.testing.assert_allclose(landscape.total, landscape.losses.sum(0),
                               rtol=1e-6)  # uniform exit weights
    assert landscape.losses.std() > 0  # not flat off the centre
    path = linear_path(model, model, (x, y), points=4)
    np.testing.assert_allclose(path.losses, np.broadcast_to(
        path.losses[:1], path.losses.shape), rtol=1e-6)
    np.testing.assert_allclose(path.barrier, 0.0, atol=1e-6)


def test_plane_through_three_models(setup):
    model, x, y = setup
    others = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        other = models.get_model("small_cnn", width=4, num_classes=5)
        other(x)
        others.append(other)
    plane = connectivity_plane({"a": model, "b": others[0],
                                "c": others[1]}, (x, y), resolution=4)
    assert plane.losses.shape == (3, 4, 4) and plane.names == ("a", "b",
                                                               "c")
    assert plane.points[0].tolist() == [0.0, 0.0]
    assert plane.points[1, 1] == 0.0 and plane.points[2, 1] > 0
    assert np.all(np.isfinite(plane.losses))
    with pytest.raises(ValueError, match="exactly three"):
        connectivity_plane({"a": model}, (x, y))


def test_batchnorm_statistics_recomputed_at_every_point(setup):
    """`batchnorm="recompute"`: the loss at a point of the path is the loss
    of the interpolated network whose moving statistics are its own on the
    data (REPAIR's `reset_bn_stats`: training-mode pass, unbiased
    variances), not the interpolated statistics."""
    model, x, y = setup
    keras.utils.set_random_seed(1)
    other = models.get_model("small_cnn", width=4, num_classes=5)
    other.compile(optimizer="adam")
    other.fit(x, y, epochs=2, batch_size=8, verbose=0)  # stats move
    interpolated = linear_path(model, other, (x, y), points=3,
                               align_weights=False)
    recomputed = linear_path(model, other, (x, y), points=3,
                             align_weights=False, batchnorm="recompute",
                             data_batch=len(x))
    assert recomputed.batchnorm == "recompute"
    assert recomputed.to_dict()["batchnorm"] == "recompute"
    # By hand: the midpoint network, statistics set by one training-mode
    # call with momentum 0 on all the data, variances made unbiased.
    keras.utils.set_random_seed(2)
    mid = models.get_model("small_cnn", width=4, num_classes=5)
    mid(x)
    space = WeightSpace(model)
    WeightSpace(mid).assign(0.5 * (space.vector() + space.vector(other)))
    norms = [layer for layer in flatten_layers(mid)
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms, "the test needs a model with BatchNorm"
    for layer in norms:
        layer.momentum = 0.0
    mid(x, training=True)
    for layer in norms:
        layer.moving_variance.assign(
            layer.moving_variance.numpy() * len(x) / (len(x) - 1))
    np.testing.assert_allclose(recomputed.losses[1],
                               _direct_losses(mid, x, y), rtol=1e-4)
    assert np.abs(recomputed.losses[1] - interpolated.losses[1]).max() > 1e-3
    with pytest.raises(ValueError, match="batchnorm"):
        linear_path(model, other, (x, y), batchnorm="reset")


class _Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def test_data_from_a_py_dataset_as_on_other_backends():
    # What `keras_eexit.data.load` yields on JAX: NumPy batches.
    rng = np.random.default_rng(0)
    x = rng.random((10, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 5, 10)
    batches = _Batches([(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])])
    got_x, got_y = as_arrays(batches, max_samples=6)
    np.testing.assert_array_equal(got_x, x[:6])
    np.testing.assert_array_equal(got_y, y[:6])
    with pytest.raises(ValueError, match="labelled data"):
        as_arrays(_Batches([x[:4]]))
