"""`damping=True` on the multi-scale networks: MSDNet (CIFAR, ImageNet) and
RANet, as the damping paper trains them (a damping unit on every exit)."""

import keras
import numpy as np
import pytest

from keras_eexit import regimes
from keras_eexit.layers import DampingHead
from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.models import msdnet_cifar
from keras_eexit.models import msdnet_imagenet
from keras_eexit.models import ranet_cifar
from keras_eexit.testing import model_contract

N = 5

# Reduced widths (those of test_zoo_contract.py): id -> (builder, kwargs).
FAMILIES = {
    "msdnet": (msdnet_cifar, {
        "input_shape": (16, 16, 3), "channels": 4, "growth_rate": 2,
        "head_filters": 8, "exits": 3}),
    "msdnet_imagenet": (msdnet_imagenet, {
        "input_shape": (32, 32, 3), "channels": 4, "growth_rate": 2,
        "head_filters": 8, "exits": 2, "base": 1, "step": 1}),
    "ranet": (ranet_cifar, {
        "input_shape": (16, 16, 3), "channels": 4, "growth_rate": 4,
        "head_filters": 8, "exits": 3, "base_blocks": 1, "block_step": 1,
        "step": 1, "step_mode": "even"}),
}


NAMES = [pytest.param(name, marks=[pytest.mark.slow] * (
    name == "msdnet_imagenet")) for name in sorted(FAMILIES)]
"""The ImageNet MSDNet with `-m slow` only: its damping units are the
CIFAR MSDNet's (its stem and head widths differ)."""


def _build(name, seed=0, **extra):
    builder, kwargs = FAMILIES[name]
    keras.utils.set_random_seed(seed)
    return builder(num_classes=N, **kwargs, **extra)


def _images(name, n=4, seed=0):
    shape = FAMILIES[name][1]["input_shape"]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype("float32")
    return x, rng.integers(0, N, size=n)


@pytest.mark.parametrize("name", NAMES)
def test_every_exit_gets_a_damping_unit(name):
    plain = _build(name)
    model = _build(name, damping=True)
    assert all(isinstance(h, DampingHead) for h in model.heads)
    for head, reference in zip(model.heads, plain.heads):
        # The reference classifier inside, as wide as without damping.
        assert isinstance(head.head, MSDNetHead)
        assert head.head.num_classes == N + 1
        assert (head.head.filters, head.head.bn_momentum) == (
            reference.filters, reference.bn_momentum)
    assert model.num_classes == N
    x, _ = _images(name)
    out = model(x, training=False)
    assert list(out) == model.exit_names
    assert all(tuple(v.shape) == (4, N + 1) for v in out.values())
    # The damping unit is one more output of each head's linear layer:
    # `filters` weights and a bias per head, `filters` multiply-adds per
    # sample (costs are cumulative over the heads up to the exit).
    filters = [h.filters for h in plain.heads]
    extra_params = np.cumsum([f + 1 for f in filters])
    np.testing.assert_array_equal(
        np.subtract(model.params_per_exit(), plain.params_per_exit()),
        extra_params)
    np.testing.assert_array_equal(
        np.subtract(model.macs_per_exit(), plain.macs_per_exit()),
        np.cumsum(filters))


@pytest.mark.parametrize("name", NAMES)
def test_damping_false_is_the_network_without_it(name):
    default = _build(name)
    model = _build(name, damping=False)
    assert not any(isinstance(h, DampingHead) for h in model.heads)
    assert [w.path for w in model.weights] == [
        w.path for w in default.weights]
    for got, expected in zip(model.weights, default.weights):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    x, _ = _images(name)
    out, expected = model(x, training=False), default(x, training=False)
    for exit_name in default.exit_names:
        assert tuple(out[exit_name].shape) == (4, N)
        np.testing.assert_array_equal(out[exit_name], expected[exit_name])


@pytest.mark.parametrize("name", ["msdnet", "ranet"])
def test_save_load_keeps_the_damping_heads(name, tmp_path):
    model = _build(name, damping=True)
    x, _ = _images(name, seed=1)
    path = tmp_path / "model.keras"
    model_contract.check_save_load(model, x, path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert all(isinstance(h.head, MSDNetHead) for h in loaded.heads)
    assert loaded.num_classes == N


@pytest.mark.parametrize("name", ["msdnet", "ranet"])
def test_damping_loss_trains_every_damping_unit(name):
    model = _build(name, damping=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _images(name, n=16)
    before = [h.head.logits.kernel.numpy()[:, -1] for h in model.heads]
    history = model.fit(
        x, y, epochs=1, batch_size=16, verbose=0,
        callbacks=[regimes.Joint(loss="damping", lam=0.5, verbose=False)])
    assert np.isfinite(history.history["loss"]).all()
    for head, old in zip(model.heads, before):
        assert not np.allclose(head.head.logits.kernel.numpy()[:, -1], old)


@pytest.mark.parametrize("builder", [msdnet_cifar, ranet_cifar])
def test_damping_must_be_a_boolean(builder):
    with pytest.raises(ValueError, match="argument `damping`"):
        builder(damping="yes")
