"""Every architecture of the zoo honours the contract of `zoo_contract`.

One small instance per family: named logits, safe-mode save/load, a joint
step that moves every stage, two-stage training that moves exactly what it
should, LiteRT exports in every mode (integer token inputs included). The
CIFAR ResNets and the `keras.applications` backbones are covered by
`test_zoo.py` and `tests/export/test_export_zoo.py`.
"""

import keras
import numpy as np
import pytest

from keras_eexit.data.text_vocab import tokenize
from keras_eexit.models import cnn1d
from keras_eexit.models import msdnet_cifar
from keras_eexit.models import msdnet_imagenet
from keras_eexit.models import ranet_cifar
from keras_eexit.models import small_cnn
from keras_eexit.models import text_transformer as tt
from keras_eexit.models import vit_exits
from keras_eexit.testing import model_contract as zoo_contract

CLASSES = 5


def _images(shape):
    def data(n, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n,) + shape).astype("float32")
        return x, rng.integers(0, CLASSES, size=n)
    return data


def _tokens(n, seed=0):
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "film", "plot", "dull", "fine", "the"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 4)))
             for _ in range(n)]
    return tokenize(texts, 16), rng.integers(0, CLASSES, size=n)


def _text(backend):
    return lambda: tt.text_transformer_exits(
        num_classes=CLASSES, sequence_length=16, num_layers=3,
        hidden_dim=16, num_heads=2, intermediate_dim=32, dropout=0.0,
        backend=backend)


# id -> (builder, data)
FAMILIES = {
    "small_cnn": (lambda: small_cnn(input_shape=(8, 8, 1), width=8,
                                    num_classes=CLASSES),
                  _images((8, 8, 1))),
    "cnn1d": (lambda: cnn1d(input_shape=(40, 1), width=8,
                            num_classes=CLASSES), _images((40, 1))),
    "msdnet": (lambda: msdnet_cifar(
        num_classes=CLASSES, input_shape=(16, 16, 3), channels=4,
        growth_rate=2, head_filters=8, exits=3), _images((16, 16, 3))),
    "msdnet_imagenet": (lambda: msdnet_imagenet(
        num_classes=CLASSES, input_shape=(32, 32, 3), channels=4,
        growth_rate=2, head_filters=8, exits=2, base=1, step=1),
        _images((32, 32, 3))),
    "ranet": (lambda: ranet_cifar(
        num_classes=CLASSES, input_shape=(16, 16, 3), channels=4,
        growth_rate=4, head_filters=8, exits=3, base_blocks=1,
        block_step=1, step=1, step_mode="even"), _images((16, 16, 3))),
    "vit": (lambda: vit_exits(
        num_classes=CLASSES, image_size=16, patch_size=4, dim=16, depth=3,
        heads=2, mlp_dim=24, exits_after=(1, 2)), _images((16, 16, 3))),
    "text_builtin": (_text("builtin"), _tokens),
    "text_keras_hub": (_text("keras_hub"), _tokens),
}


# Variants whose layers another family runs (the ImageNet MSDNet differs
# from the CIFAR one by its stem and head widths; test_msdnet_imagenet.py
# saves and loads it): `-m slow` runs them.
SLOW = {"msdnet_imagenet"}


@pytest.fixture(params=[
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
    for name in sorted(FAMILIES)])
def family(request):
    if request.param == "text_keras_hub" and not tt.keras_hub_available():
        pytest.skip("keras-hub is not installed")
    build, data = FAMILIES[request.param]

    def make(seed=0):
        keras.utils.set_random_seed(seed)
        return build()

    return make, data


def test_outputs(family):
    make, data = family
    x, _ = data(3)
    zoo_contract.check_outputs(make(), x, CLASSES)


def test_save_load(family, tmp_path):
    make, data = family
    x, _ = data(4, seed=1)
    zoo_contract.check_save_load(make(), x, tmp_path / "model.keras")


SLOW_JOINT_STEP = {"msdnet", "ranet", "vit", "text_builtin",
                   "text_keras_hub"}
"""A joint step with `-m slow` only for these: `test_two_stage`'s first
phase moves every segment of them in CI (and its second every internal
head)."""


@pytest.mark.parametrize("family", [
    pytest.param(name, marks=[pytest.mark.slow] * (
        name in SLOW | SLOW_JOINT_STEP)) for name in sorted(FAMILIES)],
    indirect=True)
def test_joint_step(family):
    make, data = family
    zoo_contract.check_joint_step(make(), *data(16))


def test_two_stage(family):
    make, data = family
    zoo_contract.check_two_stage(make(), *data(16))


SLOW_LITERT = {"ranet", "text_keras_hub"}
"""LiteRT exports run with `-m slow` only: RANet's tuple state exports as
MSDNet's does (in CI), keras-hub's encoder as the built-in one."""


@pytest.mark.parametrize("family", [
    pytest.param(name, marks=[pytest.mark.slow] * (
        name in SLOW | SLOW_LITERT)) for name in sorted(FAMILIES)],
    indirect=True)
def test_litert(family, tmp_path):
    pytest.importorskip("ai_edge_litert")
    make, data = family
    x, _ = data(3, seed=2)
    zoo_contract.check_litert(make(), x, tmp_path)
