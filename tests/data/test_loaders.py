"""Tests of keras_eexit.data: embedded sets, cache, TFDS path, augmentation."""

import glob
import os
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_eexit import data
from keras_eexit.data import embedded
from keras_eexit.data import tfds_source

SMALL_MNIST1D = 2000


def _first_batch(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


def _sorted_rows(x):
    flat = x.reshape(len(x), -1)
    return flat[np.lexsort(flat.T[::-1])]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("KERAS_EEXIT_CACHE", str(path))
    return path


# --- digits -----------------------------------------------------------------


def test_available_lists_embedded_sets():
    assert data.available() == ["digits", "mnist1d"]


def test_digits_arrays_shapes_dtypes_and_split_sizes():
    arrays = data.load_arrays("digits")
    info = arrays["info"]
    assert info.input_shape == (8, 8, 1)
    assert info.num_classes == 10
    assert info.class_names == tuple("0123456789")
    assert info.num_train + info.num_validation + info.num_test == 1797
    assert info.num_test == 360
    assert info.num_validation == 144
    for split in ("train", "val", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.shape[1:] == (8, 8, 1) and len(x) == len(y)
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(y)) == set(range(10))  # stratified
    assert len(arrays["y_train"]) == info.num_train


def test_digits_splits_partition_the_data_set():
    from sklearn.datasets import load_digits

    arrays = data.load_arrays("digits", seed=3)
    original = (load_digits().images / 16.0).astype("float32")[..., None]
    pooled = np.concatenate(
        [arrays["x_train"], arrays["x_val"], arrays["x_test"]]
    )
    # Same multiset of images: nothing lost, nothing in two splits.
    np.testing.assert_array_equal(_sorted_rows(pooled), _sorted_rows(original))
    keys = [
        {row.tobytes() for row in arrays[f"x_{split}"]}
        for split in ("train", "val", "test")
    ]
    duplicated = len(original) - len({row.tobytes() for row in original})
    overlap = len(keys[0] & keys[1]) + len(keys[0] & keys[2]) + len(
        keys[1] & keys[2]
    )
    assert overlap <= duplicated


def test_digits_test_split_is_fixed_validation_follows_seed():
    a = data.load_arrays("digits", seed=0)
    b = data.load_arrays("digits", seed=1)
    np.testing.assert_array_equal(a["x_test"], b["x_test"])
    assert not np.array_equal(a["y_val"], b["y_val"])


def test_digits_pipelines():
    splits = data.load("digits", batch_size=32)
    assert isinstance(splits, data.Splits)
    assert not splits.soft_labels
    x, y = _first_batch(splits.train)
    assert x.shape == (32, 8, 8, 1) and x.dtype == np.float32
    assert y.shape == (32,) and y.dtype == np.int32
    assert 0 <= y.min() and y.max() < 10
    for ds, count in (
        (splits.train, splits.info.num_train),
        (splits.validation, splits.info.num_validation),
        (splits.test, splits.info.num_test),
    ):
        assert sum(int(b[1].shape[0]) for b in ds) == count
        options = ds.options()
        assert (
            options.experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.DATA
        )


def test_same_seed_same_order_other_seed_other_order():
    x1, y1 = _first_batch(data.load("digits", seed=7).train)
    x2, y2 = _first_batch(data.load("digits", seed=7).train)
    x3, _ = _first_batch(data.load("digits", seed=8).train)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_train_reshuffles_each_epoch():
    train = data.load("digits", seed=0).train
    first = [y.numpy() for _, y in train]
    second = [y.numpy() for _, y in train]
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(
        np.sort(np.concatenate(first)), np.sort(np.concatenate(second))
    )


def test_deterministic_option_is_set():
    splits = data.load("digits", deterministic=True)
    assert splits.train.options().deterministic is True
    assert splits.test.options().deterministic is True


# --- mnist1d ----------------------------------------------------------------


def test_mnist1d_generates_caches_and_reads_back(cache_dir, monkeypatch):
    arrays = data.load_arrays("mnist1d", num_samples=SMALL_MNIST1D)
    info = arrays["info"]
    assert info.input_shape == (40, 1)
    assert info.num_classes == 10
    assert (info.num_train, info.num_validation, info.num_test) == (
        1440,
        160,
        400,
    )
    assert arrays["x_train"].dtype == np.float32
    assert arrays["y_train"].dtype == np.int32
    files = glob.glob(str(cache_dir / "*"))
    assert files == [embedded.mnist1d_cache_path(SMALL_MNIST1D)]
    assert files[0].endswith(".npz")
    # The cache is a plain npz: readable without pickle.
    with np.load(files[0], allow_pickle=False) as archive:
        assert set(archive.files) == {"x", "y", "x_test", "y_test"}

    def forbidden(*args, **kwargs):
        raise AssertionError("make_dataset must not run on a cache hit")

    monkeypatch.setattr("mnist1d.data.make_dataset", forbidden)
    again = data.load_arrays("mnist1d", num_samples=SMALL_MNIST1D)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(arrays[key], again[key])


def test_mnist1d_cache_key_depends_on_size(cache_dir):
    assert embedded.mnist1d_cache_path(2000) != embedded.mnist1d_cache_path(
        3000
    )
    assert os.path.dirname(embedded.mnist1d_cache_path()) == str(cache_dir)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing_key"])
def test_corrupt_mnist1d_cache_is_regenerated(cache_dir, monkeypatch, damage):
    reference = data.load_arrays("mnist1d", num_samples=SMALL_MNIST1D)
    path = embedded.mnist1d_cache_path(SMALL_MNIST1D)
    if damage == "truncate":
        with open(path, "rb") as handle:
            head = handle.read(100)
        with open(path, "wb") as handle:
            handle.write(head)
    elif damage == "garbage":
        with open(path, "wb") as handle:
            handle.write(b"not an npz file")
    else:
        np.savez(path, x=np.zeros((3, 40), "float32"))

    import mnist1d.data

    calls = []
    original = mnist1d.data.make_dataset

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("mnist1d.data.make_dataset", counting)
    regenerated = data.load_arrays("mnist1d", num_samples=SMALL_MNIST1D)
    assert calls == [1]
    np.testing.assert_array_equal(reference["x_test"], regenerated["x_test"])
    assert embedded._valid_mnist1d(
        embedded.cache_lib.read_npz(path, ("x", "y", "x_test", "y_test")),
        SMALL_MNIST1D,
    )
    assert glob.glob(str(cache_dir / ".tmp-*")) == []


def test_mnist1d_leaves_global_random_state_alone(cache_dir):
    np.random.seed(1234)
    random.seed(1234)
    numpy_before = np.random.get_state()
    python_before = random.getstate()
    data.load_arrays("mnist1d", num_samples=SMALL_MNIST1D)  # generates
    numpy_after = np.random.get_state()
    assert numpy_before[0] == numpy_after[0]
    np.testing.assert_array_equal(numpy_before[1], numpy_after[1])
    assert numpy_before[2:] == numpy_after[2:]
    assert random.getstate() == python_before


def test_mnist1d_pipeline(cache_dir):
    splits = data.load("mnist1d", num_samples=SMALL_MNIST1D, batch_size=50)
    x, y = _first_batch(splits.train)
    assert x.shape == (50, 40, 1) and x.dtype == np.float32
    assert y.dtype == np.int32


def test_write_npz_failure_is_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    # The "directory" is a file: writing fails, the caller carries on.
    assert not embedded.cache_lib.write_npz(
        str(blocker / "a.npz"), {"a": np.zeros(2)}
    )


# --- TFDS -------------------------------------------------------------------


def _unnormalise(x, name):
    mean, std = tfds_source.CHANNEL_STATS[name]
    return x * np.asarray(std, "float32") + np.asarray(mean, "float32")


def test_tfds_cifar10_mocked(tmp_path):
    with tfds.testing.mock_data(num_examples=20):
        splits = data.load("cifar10", batch_size=8, data_dir=str(tmp_path))
        batches = {
            split: list(getattr(splits, split).as_numpy_iterator())
            for split in ("train", "validation", "test")
        }
    info = splits.info
    assert info.input_shape == (32, 32, 3)
    assert info.num_classes == 10
    assert info.num_validation > 0 and info.num_test > 0
    for split, items in batches.items():
        x, y = items[0]
        assert x.shape == (8, 32, 32, 3) and x.dtype == np.float32
        assert y.dtype == np.int32 and 0 <= y.min() and y.max() < 10
        pixels = _unnormalise(x, "cifar10") * 255.0
        assert pixels.min() > -1e-3 and pixels.max() < 255.0 + 1e-3
        np.testing.assert_allclose(pixels, np.round(pixels), atol=2e-3)
    # Standardised: not in [0, 1] any more.
    assert np.concatenate([b[0] for b in batches["train"]]).min() < -1.0


def test_tfds_mnist_scaled_to_unit_range(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        arrays = data.load_arrays("mnist", data_dir=str(tmp_path))
    assert arrays["info"].input_shape == (28, 28, 1)
    assert arrays["x_train"].shape[1:] == (28, 28, 1)
    assert arrays["x_train"].dtype == np.float32
    assert arrays["y_val"].dtype == np.int32
    assert 0.0 <= arrays["x_train"].min() and arrays["x_train"].max() <= 1.0
    assert arrays["x_train"].max() > 0.5


def test_tfds_variable_size_needs_image_size(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        with pytest.raises(ValueError, match="image_size"):
            data.load("imagenette", data_dir=str(tmp_path))
        splits = data.load(
            "imagenette", data_dir=str(tmp_path), image_size=16, batch_size=4
        )
        x, y = _first_batch(splits.test)
    assert splits.info.input_shape == (16, 16, 3)
    assert x.shape == (4, 16, 16, 3)
    assert 0.0 <= x.min() and x.max() <= 1.0


@pytest.mark.parametrize(
    "name, splits, expected",
    [
        ("cifar10", [], ("train[:90%]", "train[90%:]", "test")),
        ("imagenette", [], ("train[:90%]", "train[90%:]", "validation")),
        ("oxford_flowers102", [], ("train", "validation", "test")),
        ("x", ["train", "test"], ("train[:90%]", "train[90%:]", "test")),
        ("x", ["train", "validation", "test"], ("train", "validation", "test")),
    ],
)
def test_tfds_split_choice(name, splits, expected):
    assert tfds_source._split_specs(name, splits, 0.1) == expected


def test_tfds_fractional_validation_split():
    specs = tfds_source._split_specs("cifar10", [], 0.125)
    assert specs[:2] == ("train[:87.5%]", "train[87.5%:]")


def test_tfds_not_prepared_offline_raises_clear_error(tmp_path):
    with pytest.raises(ValueError) as excinfo:
        data.load("cifar10", data_dir=str(tmp_path / "empty"))
    message = str(excinfo.value)
    assert "'cifar10'" in message
    assert "not available offline" in message
    assert "tfds build cifar10" in message
    assert "data_dir" in message
    assert "['digits', 'mnist1d']" in message


def test_tfds_non_image_set_rejected(tmp_path):
    with pytest.raises(ValueError, match="not an image classification"):
        data.load("imdb_reviews", data_dir=str(tmp_path))


# --- augmentation -------------------------------------------------------------


@pytest.mark.parametrize(
    "augment", ["flip", "crop", "flip_crop", ["flip", "crop"]]
)
def test_geometric_augmentation_keeps_shapes_and_sparse_labels(augment):
    # deterministic=True: a parallel map may otherwise reorder batches.
    plain_x, plain_y = _first_batch(
        data.load("digits", seed=5, deterministic=True).train)
    splits = data.load("digits", seed=5, augment=augment,
                       deterministic=True)
    x, y = _first_batch(splits.train)
    assert not splits.soft_labels
    assert x.shape == plain_x.shape and x.dtype == np.float32
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, plain_y)  # same order, labels untouched
    assert not np.array_equal(x, plain_x)  # something moved
    assert 0.0 <= x.min() and x.max() <= 1.0


@pytest.mark.parametrize(
    "augment", ["cutmix", "mixup", ["flip", "cutmix", "mixup"]]
)
def test_label_mixing_gives_soft_one_hot_labels(augment):
    splits = data.load("digits", batch_size=16, augment=augment)
    assert splits.soft_labels
    x, y = _first_batch(splits.train)
    assert x.shape == (16, 8, 8, 1)
    assert y.shape == (16, 10) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert y.min() >= 0.0
    _, y_val = _first_batch(splits.validation)
    assert y_val.shape == (16,) and y_val.dtype == np.int32


def test_deterministic_augmentation_is_reproducible():
    augment = ["flip_crop", "mixup"]
    first = _first_batch(
        data.load("digits", augment=augment, deterministic=True).train
    )
    second = _first_batch(
        data.load("digits", augment=augment, deterministic=True).train
    )
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_augmentation_of_1d_data_is_rejected(cache_dir, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("must fail before generating data")

    monkeypatch.setattr("mnist1d.data.make_dataset", forbidden)
    with pytest.raises(ValueError, match=r"augment.*rank 3.*\(40, 1\)"):
        data.load("mnist1d", augment="flip")


# --- bad arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (
            {"name": "no_such_set"},
            r"Unknown data set 'no_such_set'.*\['digits', 'mnist1d'\]",
        ),
        ({"name": "digit"}, r"Did you mean 'digits'"),
        ({"name": 3}, r"argument `name`"),
        ({"batch_size": 0}, r"argument `batch_size`.*Received: batch_size=0"),
        ({"batch_size": 2.5}, r"argument `batch_size`"),
        (
            {"validation_split": 0.0},
            r"argument `validation_split`.*between 0 and 1",
        ),
        ({"validation_split": 1.0}, r"argument `validation_split`"),
        ({"validation_split": -0.2}, r"argument `validation_split`"),
        (
            {"name": "mnist1d", "num_samples": 99},
            r"argument `num_samples`.*>= 100",
        ),
        ({"name": "mnist1d", "num_samples": 1000.0}, r"argument `num_samples`"),
        ({"num_samples": 500}, r"only 'mnist1d'"),
        ({"augment": "rotate"}, r"Unknown augment 'rotate'.*Valid choices"),
        ({"augment": ["flip", "cutmx"]}, r"Did you mean 'cutmix'"),
        ({"augment": 3}, r"argument `augment`"),
        ({"shuffle_buffer": 0}, r"argument `shuffle_buffer`"),
        ({"cache": 1}, r"argument `cache`"),
        ({"seed": 1.5}, r"argument `seed`"),
        ({"image_size": 32}, r"argument `image_size`"),
        ({"name": "cifar10", "image_size": (0, 4)}, r"argument `image_size`"),
    ],
)
def test_bad_arguments_raise(kwargs, pattern):
    kwargs = {"name": "digits", **kwargs}
    with pytest.raises(ValueError, match=pattern):
        data.load(**kwargs)


def test_load_arrays_rejects_bad_arguments():
    with pytest.raises(ValueError, match="validation_split"):
        data.load_arrays("digits", validation_split=2)
    with pytest.raises(ValueError, match="Unknown data set"):
        data.load_arrays("nope")
