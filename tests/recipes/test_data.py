"""The recipes' data step: CIFAR archives through `cifar_archive`, the
20 Newsgroups archive, the synthetic smoke images and token sequences."""

import io
import sys
import tarfile
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


NEWS = {"train": {"rec.autos": ["my car engine", "the car wheels"],
                  "sci.space": ["the rocket orbit", "orbit of mars"]},
        "test": {"rec.autos": ["a car"], "sci.space": ["a rocket"]}}


def _write_newsgroups(tmp_path, packed):
    if not packed:
        for split, groups in NEWS.items():
            for group, texts in groups.items():
                folder = tmp_path / f"20news-bydate-{split}" / group
                folder.mkdir(parents=True)
                for i, text in enumerate(texts):
                    (folder / str(100 + i)).write_text(text)
        return
    with tarfile.open(tmp_path / "20news-bydate.tar.gz", "w:gz") as tar:
        for split, groups in NEWS.items():
            for group, texts in groups.items():
                for i, text in enumerate(texts):
                    info = tarfile.TarInfo(
                        f"20news-bydate-{split}/{group}/{100 + i}")
                    info.size = len(text)
                    tar.addfile(info, io.BytesIO(text.encode()))


@pytest.mark.parametrize("packed", [True, False])
def test_newsgroups_archive_is_read_and_tokenised(tmp_path, packed):
    _write_newsgroups(tmp_path, packed)
    data_lib.check_data_dir("20newsgroups", str(tmp_path))  # found
    recipe = recipes.get("kubaty_bert_20newsgroups")
    settings = recipe.settings("full")
    config = recipe.config(recipe.arms[0], 0, settings,
                           data_dir=str(tmp_path))
    splits = data_lib.loader(recipe, settings, str(tmp_path))(config)
    assert (splits.info.num_train + splits.info.num_validation,
            splits.info.num_test) == (4, 2)
    assert splits.info.input_shape == (recipe.input_shape[0],)
    x, y = next(splits.test.as_numpy_iterator())
    assert list(y) == [0, 1]  # groups in sorted order
    assert x.dtype == np.int32 and list(x[:, 0]) == [2, 2]  # [CLS]
    # "a" is not in the training texts; "car" and "rocket" are.
    assert x[0, 1] == x[1, 1] == 1 and x[0, 2] != x[1, 2] and x[0, 2] > 3


def test_missing_newsgroups_archive_says_where_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="20news-bydate.tar.gz"):
        data_lib.check_data_dir("20newsgroups", str(tmp_path))


def test_synthetic_tokens_are_seeded_and_class_conditional():
    a = data_lib.synthetic_tokens(16, 4, 64, 64, seed=1)
    b = data_lib.synthetic_tokens(16, 4, 64, 64, seed=1)
    np.testing.assert_array_equal(a["x_train"], b["x_train"])
    assert a["x_train"].shape == (64, 16) and a["x_train"].dtype == np.int32
    assert (a["x_train"][:, 0] == 2).all()  # [CLS]
    assert a["x_train"][:, 1:].min() >= 4 and a["x_train"].max() < 64
    # Each class draws half its tokens from its own slice of the words.
    for k in range(4):
        tokens = a["x_train"][a["y_train"] == k, 1:]
        own = (tokens >= 4 + 15 * k) & (tokens < 4 + 15 * (k + 1))
        assert own.mean() > 0.5
