"""The data step of a recipe: real data offline, or synthetic smoke images.

* `"cifar10"` / `"cifar100"`: the official Python archives
  (`cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`, or their extracted
  `cifar-10-batches-py/` / `cifar-100-python/` folders) in `data_dir`, read
  by `keras_eexit.data.cifar_archive.load_cifar`, or a prepared TFDS
  directory;
* any other name: a prepared TFDS directory (`keras_eexit.data.load`);
* `"synthetic_images"` (`--scale smoke`): seeded class-conditional images
  of the recipe's smoke shape.

`check_data_dir` runs before anything is trained, so a missing data set
fails at once with how to prepare it.
"""

import os

import numpy as np

CIFAR_FILES = {
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py"),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python"),
}
SYNTHETIC = "synthetic_images"


def _cifar_archive(name, data_dir):
    for entry in CIFAR_FILES.get(name, ()):
        if os.path.exists(os.path.join(data_dir, entry)):
            return True
    return False


def _tfds_prepared(name, data_dir):
    return os.path.isdir(os.path.join(data_dir, name.split("/")[0]))


def how_to_prepare(name):
    """One sentence: how to make data set `name` available offline."""
    if name in CIFAR_FILES:
        archive, folder = CIFAR_FILES[name]
        return (f"put the official {archive} (or its extracted {folder}/) "
                "from https://www.cs.toronto.edu/~kriz/cifar.html in it, or "
                f"prepare the TFDS set there on a machine with internet "
                f"(`tfds build {name} --data_dir DIR`)")
    return (f"prepare the TFDS set there on a machine with internet "
            f"(`tfds build {name} --data_dir DIR`) and copy the directory")


def check_data_dir(name, data_dir):
    """Raises at once when data set `name` is not in `data_dir`.

    Args:
        name: the recipe's data set.
        data_dir: the directory given with `--data-dir` (or `None`).

    Raises:
        ValueError: one line naming the data set, the directory and how
            to prepare it.
    """
    if name == SYNTHETIC:
        return
    if data_dir is None:
        raise ValueError(
            f"Recipe data set {name!r} needs --data-dir: "
            f"{how_to_prepare(name)} (or run --scale smoke, which needs no "
            "data).")
    if not os.path.isdir(data_dir):
        raise ValueError(
            f"Data directory {data_dir!r} does not exist: create it and "
            f"{how_to_prepare(name)}.")
    if not (_cifar_archive(name, data_dir) or _tfds_prepared(name,
                                                             data_dir)):
        raise ValueError(
            f"Data set {name!r} is not in {data_dir!r}: "
            f"{how_to_prepare(name)}.")


def synthetic_arrays(input_shape, num_classes, num_train, seed):
    """Seeded class-conditional images (a smooth template per class).

    Args:
        input_shape: `(height, width, channels)`.
        num_classes: classes.
        num_train: training examples (validation and test: a quarter).
        seed: the seed of templates and noise.

    Returns:
        `{"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}`,
        `float32` images and `int32` labels.
    """
    rng = np.random.default_rng(seed)
    h, w, c = input_shape
    low = rng.normal(size=(num_classes, max(2, h // 4), max(2, w // 4), c))
    reps = (1, -(-h // low.shape[1]), -(-w // low.shape[2]), 1)
    templates = np.tile(np.repeat(np.repeat(low, 4, 1), 4, 2), reps)
    templates = templates[:, :h, :w, :].astype("float32")

    def draw(n):
        y = np.arange(n) % num_classes
        rng.shuffle(y)
        x = templates[y] + rng.normal(scale=1.0, size=(n, h, w, c))
        return x.astype("float32"), y.astype("int32")

    out = {}
    for split, n in (("train", num_train), ("val", num_train // 4),
                     ("test", num_train // 4)):
        out[f"x_{split}"], out[f"y_{split}"] = draw(n)
    return out


def _cifar_arrays(name, data_dir, validation_split, split_seed):
    import importlib

    try:
        cifar_archive = importlib.import_module(
            "keras_eexit.data.cifar_archive")
    except ImportError:
        raise ValueError(
            "Reading the CIFAR Python archives needs "
            "keras_eexit.data.cifar_archive, which this installation lacks; "
            f"prepare the TFDS set {name!r} in --data-dir instead.") from None
    (x_train, y_train), (x_test, y_test) = cifar_archive.load_cifar(
        data_dir, name)
    order = np.random.default_rng(split_seed).permutation(len(x_train))
    n_val = int(round(len(x_train) * validation_split))
    val, train = order[:n_val], order[n_val:]
    x_train = np.asarray(x_train, "float32") / 255.0
    x_test = np.asarray(x_test, "float32") / 255.0
    # Per-channel standardisation with the training split's statistics.
    mean = x_train[train].mean(axis=(0, 1, 2))
    std = x_train[train].std(axis=(0, 1, 2))

    def scale(x):
        return ((x - mean) / std).astype("float32")

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    return {"x_train": scale(x_train[train]),
            "y_train": y_train[train].astype("int32"),
            "x_val": scale(x_train[val]), "y_val": y_train[val].astype(
                "int32"),
            "x_test": scale(x_test), "y_test": y_test.astype("int32")}


def splits_from_arrays(name, arrays, num_classes, config):
    """`data.Splits` of in-memory arrays, shuffled and augmented as
    `keras_eexit.data.load` does."""
    import tensorflow as tf

    from keras_eexit import data
    from keras_eexit.data import augment as augment_lib
    from keras_eexit.data import pipeline as pipeline_lib

    info = data.DatasetInfo(
        name=name, input_shape=tuple(arrays["x_train"].shape[1:]),
        num_classes=num_classes, num_train=len(arrays["x_train"]),
        num_validation=len(arrays["x_val"]),
        num_test=len(arrays["x_test"]))
    names = augment_lib.parse_augment(config.augment)
    augmenter = None if not names else augment_lib.build_augmenter(
        names, info.input_shape, num_classes, config.seed)

    def source(split):
        return tf.data.Dataset.from_tensor_slices(
            (arrays[f"x_{split}"], arrays[f"y_{split}"]))

    train = pipeline_lib.train_pipeline(
        source("train"), batch_size=config.batch_size,
        shuffle_buffer=info.num_train, seed=config.seed, cache=True,
        deterministic=config.deterministic, augmenter=augmenter)
    validation, test = (
        pipeline_lib.eval_pipeline(source(split),
                                   batch_size=config.batch_size, cache=True)
        for split in ("val", "test"))
    return data.Splits(train=train, validation=validation, test=test,
                       info=info,
                       soft_labels=augment_lib.uses_soft_labels(names))


def loader(recipe, settings, data_dir):
    """`f(config) -> data.Splits` for `experiments.run(load_data=...)`.

    Args:
        recipe: the `Recipe`.
        settings: `recipe.settings(scale)`.
        data_dir: the data directory (ignored for smoke data).
    """
    name = settings["dataset"]
    cache = {}

    def load(config):
        from keras_eexit import data

        if name == SYNTHETIC:
            s = recipe.smoke
            arrays = cache.setdefault("arrays", synthetic_arrays(
                s.input_shape, s.num_classes, s.num_samples, seed=1234))
            return splits_from_arrays(name, arrays, s.num_classes, config)
        if _cifar_archive(name, data_dir):
            arrays = cache.setdefault("arrays", _cifar_arrays(
                name, data_dir, recipe.validation_split, split_seed=42))
            return splits_from_arrays(name, arrays, recipe.num_classes,
                                      config)
        return data.load(name, batch_size=config.batch_size,
                         validation_split=recipe.validation_split,
                         seed=config.seed, augment=config.augment,
                         deterministic=config.deterministic,
                         data_dir=data_dir)

    return load
