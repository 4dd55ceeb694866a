"""The recipes' data step: CIFAR archives through `cifar_archive`, the
synthetic smoke images."""

import sys
import types

import numpy as np
import pytest

from keras_eexit import recipes
from keras_eexit.recipes import data as data_lib


def _fake_archive(monkeypatch, n_train=40, n_test=10):
    rng = np.random.default_rng(0)
    calls = []

    def load_cifar(path, name):
        calls.append((path, name))
        return ((rng.integers(0, 256, (n_train, 32, 32, 3), dtype="uint8"),
                 rng.integers(0, 100, n_train)),
                (rng.integers(0, 256, (n_test, 32, 32, 3), dtype="uint8"),
                 rng.integers(0, 100, n_test)))

    module = types.ModuleType("keras_eexit.data.cifar_archive")
    module.load_cifar = load_cifar
    monkeypatch.setitem(sys.modules, "keras_eexit.data.cifar_archive",
                        module)
    return calls


def test_cifar_archive_is_read_split_and_standardised(tmp_path,
                                                      monkeypatch):
    calls = _fake_archive(monkeypatch)
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"")
    recipe = recipes.get("zniber_resnet34_cifar100")
    settings = recipe.settings("full")
    data_lib.check_data_dir("cifar100", str(tmp_path))  # found: no error
    config = recipe.config(recipe.arms[0], 0, settings,
                           data_dir=str(tmp_path))
    splits = data_lib.loader(recipe, settings, str(tmp_path))(config)
    assert calls == [(str(tmp_path), "cifar100")]
    assert (splits.info.num_train, splits.info.num_validation,
            splits.info.num_test) == (36, 4, 10)
    assert splits.soft_labels  # the recipe's CutMix + MixUp
    x = np.concatenate([b[0] for b in splits.validation.as_numpy_iterator()])
    assert x.shape[1:] == (32, 32, 3) and x.dtype == np.float32
    assert np.all(np.abs(x.mean(axis=(0, 1, 2))) < 1.0)  # standardised


def test_without_the_archive_reader_the_message_says_what_to_do(
        tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_eexit.data.cifar_archive", None)
    (tmp_path / "cifar-10-batches-py").mkdir()
    recipe = recipes.get("kubaty_resnet34_cifar10")
    settings = recipe.settings("full")
    config = recipe.config(recipe.arms[0], 0, settings,
                           data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="TFDS set 'cifar10'"):
        data_lib.loader(recipe, settings, str(tmp_path))(config)


def test_synthetic_images_are_seeded_and_learnable_in_principle():
    a = data_lib.synthetic_arrays((16, 16, 3), 4, 64, seed=1)
    b = data_lib.synthetic_arrays((16, 16, 3), 4, 64, seed=1)
    np.testing.assert_array_equal(a["x_train"], b["x_train"])
    assert a["x_train"].shape == (64, 16, 16, 3)
    assert a["x_test"].shape == (16, 16, 16, 3)
    assert set(a["y_train"]) == {0, 1, 2, 3}
    # Class means differ: a template per class under the noise.
    means = [a["x_train"][a["y_train"] == k].mean(0) for k in range(4)]
    assert np.abs(means[0] - means[1]).mean() > 0.3
