"""The data step of a recipe: real data offline, or synthetic smoke images.

* `"cifar10"` / `"cifar100"`: the official Python archives
  (`cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`, or their extracted
  `cifar-10-batches-py/` / `cifar-100-python/` folders) in `data_dir`, read
  by `keras_eexit.data.cifar_archive.load_cifar`, or a prepared TFDS
  directory;
* any other name: a prepared TFDS directory (`keras_eexit.data.load`);
* `"glue/sst2"`: the prepared TFDS set (GLUE's test labels are hidden, so
  its validation split is the test split); `"20newsgroups"` (not in TFDS):
  the `20news-bydate.tar.gz` archive or its extracted
  `20news-bydate-train/` and `20news-bydate-test/` folders. Both are
  tokenised with a word vocabulary of the training texts
  (`keras_eexit.data.text_vocab`);
* `"synthetic_images"` / `"synthetic_tokens"` (`--scale smoke`): seeded
  class-conditional images, or token sequences, of the recipe's smoke
  shape.

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
SYNTHETIC_TOKENS = "synthetic_tokens"
NEWSGROUPS = ("20news-bydate.tar.gz", "20news-bydate-train")
TEXT_SETS = ("glue/sst2", "20newsgroups")


def _cifar_archive(name, data_dir):
    for entry in CIFAR_FILES.get(name, ()):
        if os.path.exists(os.path.join(data_dir, entry)):
            return True
    return False


def _newsgroups_archive(data_dir):
    return any(os.path.exists(os.path.join(data_dir, entry))
               for entry in NEWSGROUPS)


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
    if name == "20newsgroups":
        return ("put 20news-bydate.tar.gz (or its extracted "
                "20news-bydate-train/ and 20news-bydate-test/) from "
                "http://qwone.com/~jason/20Newsgroups/ in it")
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
    if name in (SYNTHETIC, SYNTHETIC_TOKENS):
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
    if not (_cifar_archive(name, data_dir) or _tfds_prepared(name, data_dir)
            or (name == "20newsgroups" and _newsgroups_archive(data_dir))):
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


def synthetic_tokens(sequence_length, num_classes, vocabulary_size,
                     num_train, seed):
    """Seeded class-conditional token sequences (`[CLS]`, then tokens).

    Each class draws most of its tokens from its own slice of the
    vocabulary and the rest uniformly, so the classes can be learnt.

    Args:
        sequence_length: tokens per example, `[CLS]` (id 2) first.
        num_classes: classes.
        vocabulary_size: token ids `< vocabulary_size` (ids 0-3 are the
            special tokens, `keras_eexit.data.text_vocab`).
        num_train: training examples (validation and test: a quarter).
        seed: the seed.

    Returns:
        `{"x_train", "y_train", "x_val", ...}`, `int32` ids and labels.
    """
    rng = np.random.default_rng(seed)
    words = np.arange(4, vocabulary_size)
    slices = np.array_split(words, num_classes)

    def draw(n):
        y = np.arange(n) % num_classes
        rng.shuffle(y)
        x = rng.choice(words, size=(n, sequence_length))
        own = rng.random((n, sequence_length)) < 0.5
        for c in range(num_classes):
            rows = y == c
            x[rows] = np.where(own[rows], rng.choice(
                slices[c], size=(rows.sum(), sequence_length)), x[rows])
        x[:, 0] = 2  # [CLS]
        return x.astype("int32"), y.astype("int32")

    out = {}
    for split, n in (("train", num_train), ("val", num_train // 4),
                     ("test", num_train // 4)):
        out[f"x_{split}"], out[f"y_{split}"] = draw(n)
    return out


def _newsgroups_texts(data_dir):
    """`{"train": (texts, labels), "test": ...}` of the bydate archive."""
    import tarfile

    folders = {"train": {}, "test": {}}
    tar_path = os.path.join(data_dir, NEWSGROUPS[0])
    if os.path.isdir(os.path.join(data_dir, NEWSGROUPS[1])):
        for split in folders:
            root = os.path.join(data_dir, f"20news-bydate-{split}")
            for group in sorted(os.listdir(root)):
                for file in sorted(os.listdir(os.path.join(root, group))):
                    with open(os.path.join(root, group, file), "rb") as f:
                        folders[split].setdefault(group, []).append(f.read())
    else:
        with tarfile.open(tar_path) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                parts = member.name.strip("./").split("/")
                if not member.isfile() or len(parts) != 3:
                    continue
                split = parts[0].rsplit("-", 1)[-1]
                folders[split].setdefault(parts[1], []).append(
                    tar.extractfile(member).read())
    groups = sorted(folders["train"])
    out = {}
    for split, by_group in folders.items():
        texts = [t.decode("latin-1") for g in groups for t in by_group[g]]
        labels = [i for i, g in enumerate(groups) for _ in by_group[g]]
        out[split] = (texts, labels)
    return out


def _tfds_texts(name, data_dir):
    """`{"train": ..., "test": ...}` of a prepared TFDS text set (GLUE's
    test labels are hidden: its validation split is the test split)."""
    import tensorflow_datasets as tfds

    out = {}
    for split, tfds_split in (("train", "train"), ("test", "validation")):
        ds = tfds.load(name, split=tfds_split, data_dir=data_dir,
                       download=False)
        texts, labels = [], []
        for example in tfds.as_numpy(ds):
            texts.append(example["sentence"].decode("utf-8"))
            labels.append(int(example["label"]))
        out[split] = (texts, labels)
    return out


def _text_arrays(name, data_dir, recipe, split_seed):
    """Token ids of a text set: a word vocabulary of the training split's
    texts (as large as the model's), `[CLS]` ... `[SEP]`, padded."""
    from keras_eexit.data.text_vocab import TextVocabulary

    texts = (_newsgroups_texts(data_dir) if name == "20newsgroups"
             else _tfds_texts(name, data_dir))
    train_texts, train_labels = texts["train"]
    order = np.random.default_rng(split_seed).permutation(len(train_texts))
    n_val = int(round(len(train_texts) * recipe.validation_split))
    val, train = order[:n_val], order[n_val:]
    vocab = TextVocabulary.from_texts(
        [train_texts[i] for i in train],
        max_size=recipe.model_params["vocabulary_size"])
    length = recipe.input_shape[0]

    def ids(all_texts, rows):
        return vocab.tokenize([all_texts[i] for i in rows], length)

    y = np.asarray(train_labels, "int32")
    test_texts, test_labels = texts["test"]
    return {"x_train": ids(train_texts, train), "y_train": y[train],
            "x_val": ids(train_texts, val), "y_val": y[val],
            "x_test": ids(test_texts, range(len(test_texts))),
            "y_test": np.asarray(test_labels, "int32")}


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

        s = recipe.smoke
        if name == SYNTHETIC:
            arrays = cache.setdefault("arrays", synthetic_arrays(
                s.input_shape, s.num_classes, s.num_samples, seed=1234))
            return splits_from_arrays(name, arrays, s.num_classes, config)
        if name == SYNTHETIC_TOKENS:
            arrays = cache.setdefault("arrays", synthetic_tokens(
                s.input_shape[0], s.num_classes,
                s.model_params["vocabulary_size"], s.num_samples, seed=1234))
            return splits_from_arrays(name, arrays, s.num_classes, config)
        if name in TEXT_SETS:
            arrays = cache.setdefault("arrays", _text_arrays(
                name, data_dir, recipe, split_seed=42))
            return splits_from_arrays(name, arrays, recipe.num_classes,
                                      config)
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
