"""Weight matching: permuted copies are equivalent, found again, and then
connected to the original by a flat path (zero barrier)."""

import numpy as np
import pytest

from keras_eexit import models
from keras_eexit.analysis import WeightSpace
from keras_eexit.analysis import apply_permutation
from keras_eexit.analysis import linear_path
from keras_eexit.analysis import permutation_spec
from keras_eexit.analysis import weight_matching

ZOO = [("small_cnn", (8, 8, 1), {"width": 4}),
       ("cnn1d", (16, 1), {"width": 4}),
       ("cifar_resnet", (8, 8, 3), {}),
       # projection shortcuts and SDN pooling heads (ResNet-34's kinds)
       ("cifar_resnet", (16, 16, 3), {"shortcut": "projection",
                                      "head": "sdn_pool"})]


def _model(name, shape, kwargs, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = models.get_model(name, input_shape=shape, num_classes=5,
                             **kwargs)
    x = np.random.default_rng(seed).normal(size=(24,) + shape).astype(
        "float32")
    model(x)
    rng = np.random.default_rng(seed + 1)
    for v in model.non_trainable_variables:  # BN statistics that matter
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
    for v in model.trainable_variables:
        if len(v.shape) == 1:  # biases, BN scale/offset away from 0/1
            v.assign(rng.normal(0, 0.5, v.shape).astype("float32"))
    return model, x


@pytest.mark.parametrize("name,shape,kwargs", ZOO)
def test_permuted_copy_is_equivalent_and_aligned_back(name, shape, kwargs):
    model, x = _model(name, shape, kwargs)
    space, spec = WeightSpace(model), permutation_spec(model)
    theta = space.vector()
    rng = np.random.default_rng(7)
    perms = {g: rng.permutation(n) for g, n in spec.groups.items()}
    permuted = apply_permutation(space, spec, theta, perms)
    assert np.abs(permuted - theta).max() > 0.1  # really moved
    before = {k: np.asarray(v) for k, v in model(x, training=False).items()}
    space.assign(permuted)
    after = {k: np.asarray(v) for k, v in model(x, training=False).items()}
    space.assign(theta)
    for key in before:  # same function
        assert np.abs(before[key]).max() > 1e-3
        np.testing.assert_allclose(after[key], before[key], atol=1e-4,
                                   rtol=1e-4)
    found = weight_matching(space, spec, theta, permuted)
    aligned = apply_permutation(space, spec, permuted, found)
    np.testing.assert_array_equal(aligned, theta)


def test_aligned_permuted_copy_has_zero_barrier_unaligned_does_not():
    model, x = _model("small_cnn", (8, 8, 1), {"width": 4})
    copy, _ = _model("small_cnn", (8, 8, 1), {"width": 4})
    space, spec = WeightSpace(model), permutation_spec(model)
    rng = np.random.default_rng(3)
    perms = {g: rng.permutation(n) for g, n in spec.groups.items()}
    WeightSpace(copy).assign(apply_permutation(space, spec, space.vector(),
                                               perms))
    y = np.random.default_rng(0).integers(0, 5, len(x))
    aligned = linear_path(model, copy, (x, y), points=5)
    np.testing.assert_allclose(aligned.barrier, 0.0, atol=1e-5)
    np.testing.assert_allclose(  # flat: the same network all along
        aligned.losses, np.broadcast_to(aligned.losses[:1], (5, 3)),
        atol=1e-5)
    raw = linear_path(model, copy, (x, y), points=5, align_weights=False)
    assert raw.barrier.max() > 1e-3


def test_unsupported_models_are_refused(model_factory):
    tiny = model_factory()
    tiny.build((None, 8, 8, 1))
    with pytest.raises(ValueError, match="does not support model 'tiny'.*"
                       "small_cnn, cnn1d, cifar_resnet"):
        permutation_spec(tiny)
    conv_heads = models.get_model("small_cnn", width=4, head="conv_pool")
    conv_heads.build((None, 8, 8, 1))
    with pytest.raises(ValueError, match="has a ConvPoolHead.*LinearHead"):
        permutation_spec(conv_heads)
