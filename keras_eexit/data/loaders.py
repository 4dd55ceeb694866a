"""`load`, `load_arrays` and `available`: one entry point for every data set.

Embedded sets (`available()`): `"digits"` and `"mnist1d"`, which need no
download (see `keras_eexit.data.embedded` for their splits). Any other name
is looked up in TensorFlow Datasets and read offline from a prepared
`data_dir` (see `keras_eexit.data.tfds_source`); for `"cifar10"` and
`"cifar100"`, a `data_dir` holding the official Python archive (or its
extracted folder) is read instead (see `keras_eexit.data.cifar_source`).
"""

import difflib
import numbers
import os

import keras
import numpy as np

from keras_eexit.data import augment as augment_lib
from keras_eexit.data import cifar_source
from keras_eexit.data import embedded as embedded_lib
from keras_eexit.data import pipeline as pipeline_lib
from keras_eexit.data import tfds_source
from keras_eexit.data.array_batches import ArrayBatches
from keras_eexit.data.info import DatasetInfo
from keras_eexit.data.info import Splits
from keras_eexit.utils.lazy_import import tf
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

#: Shuffle buffer cap of TFDS sets when `shuffle_buffer=None`.
TFDS_SHUFFLE_BUFFER = 10_000


def available():
    """Returns the names of the embedded data sets (no download needed).

    Example:

    >>> available()
    ['digits', 'mnist1d']
    """
    return sorted(embedded_lib.EMBEDDED)


def _check_validation_split(value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 < float(value) < 1.0
    ):
        raise invalid_value(
            "validation_split", "a float strictly between 0 and 1", value
        )
    return float(value)


def _check_seed(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid_value("seed", "an integer", value)
    return int(value)


def _check_image_size(value):
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(v, numbers.Integral)
            and not isinstance(v, bool)
            and v > 0
            for v in value
        )
    ):
        return (int(value[0]), int(value[1]))
    raise invalid_value(
        "image_size",
        "None, a positive integer or a (height, width) pair",
        value,
    )


def _check_num_samples(name, value):
    if value is None:
        return None
    if name != "mnist1d":
        raise invalid_value(
            "num_samples",
            f"None for data set {name!r} (only 'mnist1d' is generated and "
            "takes a size)",
            value,
        )
    minimum = embedded_lib.MIN_SAMPLES_PER_CLASS * embedded_lib.EMBEDDED[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise invalid_value(
            "num_samples",
            f"an integer >= {minimum} (at least "
            f"{embedded_lib.MIN_SAMPLES_PER_CLASS} examples per class)",
            value,
        )
    return int(value)


def _resolve(name, data_dir):
    """Returns `"embedded"`, `"cifar_archive"` or `"tfds"` for `name`, or
    raises."""
    if not isinstance(name, str):
        raise invalid_value("name", "a data set name (a string)", name)
    if name in embedded_lib.EMBEDDED:
        return "embedded"
    if cifar_source.has_cifar_archive(name, data_dir):
        return "cifar_archive"
    if tfds_source.is_tfds_name(name):
        return "tfds"
    near = difflib.get_close_matches(
        name, available() + list(tfds_source.builder_names()), n=3
    )
    hint = ""
    if near:
        hint = f" Did you mean {' or '.join(repr(n) for n in near)}?"
    raise ValueError(
        f"Unknown data set {name!r}. Valid choices: {available()} (embedded, "
        "no download needed), or the name of a TensorFlow Datasets image "
        "classification set prepared offline (see "
        f"`tfds.list_builders()`).{hint}"
    )


def _embedded_arrays(name, validation_split, seed, num_samples):
    if name == "digits":
        arrays = embedded_lib.digits_arrays(validation_split, seed)
    else:
        arrays = embedded_lib.mnist1d_arrays(
            validation_split, seed, num_samples=num_samples
        )
    info = DatasetInfo(
        name=name,
        input_shape=tuple(int(d) for d in arrays["x_train"].shape[1:]),
        num_classes=embedded_lib.EMBEDDED[name],
        num_train=len(arrays["y_train"]),
        num_validation=len(arrays["y_val"]),
        num_test=len(arrays["y_test"]),
        class_names=arrays.pop("class_names"),
    )
    arrays["info"] = info
    return arrays


def _tfds_info(name, source):
    return DatasetInfo(
        name=name,
        input_shape=source["input_shape"],
        num_classes=source["num_classes"],
        num_train=source["num_train"],
        num_validation=source["num_validation"],
        num_test=source["num_test"],
        class_names=source["class_names"],
    )


def _read_source(kind, name, validation_split, data_dir, image_size):
    """The `load_tfds`-style dict of a TFDS set or a CIFAR archive."""
    if kind == "cifar_archive":
        return cifar_source.load_cifar_source(name, data_dir,
                                              validation_split, image_size)
    return tfds_source.load_tfds(
        name, validation_split, data_dir, image_size, available()
    )


def _check_common(name, validation_split, seed, num_samples, image_size,
                  data_dir):
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise invalid_value("data_dir", "None or a directory path",
                            data_dir)
    kind = _resolve(name, data_dir)
    validation_split = _check_validation_split(validation_split)
    seed = _check_seed(seed)
    num_samples = _check_num_samples(name, num_samples)
    image_size = _check_image_size(image_size)
    if image_size is not None and kind == "embedded":
        raise invalid_value(
            "image_size",
            f"None for the embedded data set {name!r} (resizing applies to "
            "TFDS images)",
            image_size,
        )
    return kind, validation_split, seed, num_samples, image_size


def load_arrays(
    name,
    validation_split=0.1,
    seed=0,
    num_samples=None,
    data_dir=None,
    image_size=None,
):
    """Loads a data set as numpy arrays, split three ways.

    The arrays hold exactly what `load` feeds a model (same splits, same
    scaling), without batching, shuffling or augmentation. For a TFDS set
    the whole set is materialised in memory.

    Args:
        name: `"digits"`, `"mnist1d"`, or a TFDS image classification name
            (e.g. `"cifar10"`, `"imagenette/160px"`) prepared offline.
        validation_split: Fraction (strictly between 0 and 1) of the
            training data held out for validation, unless the source has
            its own validation split (TFDS only).
        seed: Seed of the validation split of the embedded sets.
        num_samples: `"mnist1d"` only: total number of generated examples
            (default 10,000; at least 10 per class).
        data_dir: TFDS data directory (TFDS sets only); for `"cifar10"`
            and `"cifar100"` also the official Python archive, its
            extracted folder, or a directory holding either
            (`keras_eexit.data.cifar_source`).
        image_size: TFDS sets only: `None` to keep the stored size, or an
            int / `(height, width)` to resize to.

    Returns:
        A dict with `x_train`, `y_train`, `x_val`, `y_val`, `x_test`,
        `y_test` (`float32` inputs, `int32` sparse labels) and `info`
        (a `DatasetInfo`).

    Raises:
        ValueError: for an unknown name, a bad argument, or a TFDS set that
            is not prepared offline.

    Example:

    >>> arrays = load_arrays("digits")
    >>> arrays["x_train"].shape[1:], arrays["info"].num_classes
    ((8, 8, 1), 10)
    """
    kind, validation_split, seed, num_samples, image_size = _check_common(
        name, validation_split, seed, num_samples, image_size, data_dir
    )
    if kind == "embedded":
        return _embedded_arrays(name, validation_split, seed, num_samples)
    source = _read_source(kind, name, validation_split, data_dir,
                          image_size)
    arrays = {"info": _tfds_info(name, source)}
    for split, suffix in (("train", "train"), ("validation", "val"),
                          ("test", "test")):
        ds = pipeline_lib.eval_pipeline(
            source[split],
            batch_size=256,
            cache=False,
            to_float=source["to_float"],
            normalise=source["normalise"],
        )
        xs, ys = [], []
        for x, y in ds.as_numpy_iterator():
            xs.append(x)
            ys.append(y)
        arrays[f"x_{suffix}"] = np.concatenate(xs).astype("float32")
        arrays[f"y_{suffix}"] = np.concatenate(ys).astype("int32")
    return arrays


def _check_augment_shape(name, input_shape, augment):
    if len(input_shape) != 3:
        raise invalid_value(
            "augment",
            "None: augmentation applies to images (examples of rank 3, "
            f"height x width x channels), and {name!r} has examples of "
            f"shape {tuple(input_shape)}",
            augment,
        )


def _split_cache(cache, split):
    """Per-split cache argument: file caches need one file per split."""
    if isinstance(cache, str):
        return f"{cache}-{split}"
    return cache


def _array_splits(name, batch_size, validation_split, seed, num_samples,
                  augment_names):
    """An embedded set's `Splits` of `ArrayBatches` (no TensorFlow)."""
    arrays = _embedded_arrays(name, validation_split, seed, num_samples)
    info = arrays["info"]
    augmenter = None
    if augment_names:
        augmenter = augment_lib.build_augmenter(
            augment_names, info.input_shape, info.num_classes, seed)
    train = ArrayBatches(arrays["x_train"], arrays["y_train"], batch_size,
                         shuffle=True, seed=seed, map_batch=augmenter)
    validation, test = (
        ArrayBatches(arrays[f"x_{split}"], arrays[f"y_{split}"], batch_size)
        for split in ("val", "test"))
    return Splits(train=train, validation=validation, test=test, info=info,
                  soft_labels=augment_lib.uses_soft_labels(augment_names))


def load(
    name,
    batch_size=64,
    validation_split=0.1,
    seed=0,
    augment=None,
    num_samples=None,
    shuffle_buffer=None,
    cache=True,
    deterministic=False,
    data_dir=None,
    image_size=None,
):
    """Loads a data set as train / validation / test `tf.data` pipelines.

    On a Keras backend other than TensorFlow (`KERAS_BACKEND=jax`), the
    embedded sets come as `keras.utils.PyDataset`s of NumPy batches
    (`data.array_batches.ArrayBatches`: the same splits and batch size,
    the training split shuffled with `seed` every epoch, the same
    augmentation layers; `cache`, `shuffle_buffer` and `deterministic`
    have no use there) and need no TensorFlow; TFDS sets are read with
    TensorFlow on every backend.

    Pipelines (all with `AutoShardPolicy.DATA`):

    * train: [cache] -> shuffle (seeded by `seed`, reshuffled every epoch)
      -> batch -> [augment] -> prefetch;
    * validation / test: batch -> [cache] -> prefetch, in a fixed order.

    Every pipeline yields `(x, y)` with `float32` inputs and sparse `int32`
    labels, except that with `"cutmix"` or `"mixup"` the training labels
    are one-hot `float32` soft labels of length `num_classes` (rows sum to
    1; `Splits.soft_labels` is then `True`, so use a categorical, not
    sparse, cross-entropy for training). Validation and test labels stay
    sparse.

    Reproducibility: the shuffle order (and, for embedded sets without
    augmentation, every batch) follows from `seed`. With
    `deterministic=True`, `tf.data.Options().deterministic` is set and the
    seeded augmentation runs sequentially, so augmented batches and TFDS
    pipelines are reproducible too, at some cost in throughput. No global
    random state (numpy, Python, TensorFlow) is touched.

    Args:
        name: `"digits"`, `"mnist1d"` (see `available()`), or a TFDS image
            classification name (e.g. `"cifar10"`, `"cifar100"`, `"mnist"`,
            `"imagenette/160px"`) already prepared offline in `data_dir`.
        batch_size: Examples per batch, an integer >= 1.
        validation_split: Fraction (strictly between 0 and 1) of the
            training data held out for validation, unless a TFDS set has
            its own validation split.
        seed: Integer seed of shuffling, augmentation and the validation
            split of the embedded sets.
        augment: `None`, one of `"flip"`, `"crop"`, `"flip_crop"`,
            `"cutmix"`, `"mixup"`, or a list of them, applied in order to
            training batches only. Images only (not `"mnist1d"`).
        num_samples: `"mnist1d"` only: total number of generated examples
            (default 10,000, split 80/20 into train/test by the package).
        shuffle_buffer: Shuffle buffer size; `None` means the whole
            training split for embedded sets and
            `min(num_train, 10_000)` for TFDS sets.
        cache: `True` caches in memory (before shuffling for train, after
            batching for validation/test), a string caches to files with
            that prefix, `False` disables caching.
        deterministic: See "Reproducibility" above.
        data_dir: TFDS data directory (TFDS sets only); for `"cifar10"`
            and `"cifar100"` also the official Python archive, its
            extracted folder, or a directory holding either
            (`keras_eexit.data.cifar_source`).
        image_size: TFDS sets only: `None` to keep the stored size (required
            for sets with varying image sizes), or an int /
            `(height, width)` to resize to.

    Returns:
        A `Splits` with `train`, `validation`, `test` and `info`.

    Raises:
        ValueError: for an unknown name or augmentation, `batch_size < 1`,
            `validation_split` outside (0, 1), too small a `num_samples`,
            augmentation of non-image data, or a TFDS set that is not
            prepared offline.

    Example:

    ```python
    splits = keras_eexit.data.load("digits", batch_size=32)
    model.fit(splits.train, validation_data=splits.validation, epochs=5)
    ```
    """
    batch_size = check_positive_int("batch_size", batch_size)
    names = augment_lib.parse_augment(augment)
    if shuffle_buffer is not None:
        shuffle_buffer = check_positive_int("shuffle_buffer", shuffle_buffer)
    if not isinstance(cache, (bool, str)):
        raise invalid_value(
            "cache", "a bool or a file path prefix (a string)", cache
        )
    kind, validation_split, seed, num_samples, image_size = _check_common(
        name, validation_split, seed, num_samples, image_size, data_dir
    )
    if names and kind == "embedded":
        # Fail before generating or reading any data.
        _check_augment_shape(name, embedded_lib.EMBEDDED_SHAPES[name], augment)

    if kind == "embedded" and keras.backend.backend() != "tensorflow":
        return _array_splits(name, batch_size, validation_split, seed,
                             num_samples, names)
    if kind == "embedded":
        arrays = _embedded_arrays(name, validation_split, seed, num_samples)
        info = arrays["info"]
        train = tf.data.Dataset.from_tensor_slices(
            (arrays["x_train"], arrays["y_train"])
        )
        validation = tf.data.Dataset.from_tensor_slices(
            (arrays["x_val"], arrays["y_val"])
        )
        test = tf.data.Dataset.from_tensor_slices(
            (arrays["x_test"], arrays["y_test"])
        )
        to_float = normalise = None
        default_buffer = info.num_train
    else:
        source = _read_source(kind, name, validation_split, data_dir,
                              image_size)
        info = _tfds_info(name, source)
        train, validation, test = (
            source["train"], source["validation"], source["test"]
        )
        to_float, normalise = source["to_float"], source["normalise"]
        default_buffer = min(info.num_train, TFDS_SHUFFLE_BUFFER)

    augmenter = None
    if names:
        _check_augment_shape(name, info.input_shape, augment)
        augmenter = augment_lib.build_augmenter(
            names, info.input_shape, info.num_classes, seed
        )

    train = pipeline_lib.train_pipeline(
        train,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer or default_buffer,
        seed=seed,
        cache=_split_cache(cache, "train"),
        deterministic=deterministic,
        to_float=to_float,
        augmenter=augmenter,
        normalise=normalise,
    )
    validation, test = (
        pipeline_lib.eval_pipeline(
            ds,
            batch_size=batch_size,
            cache=_split_cache(cache, split),
            to_float=to_float,
            normalise=normalise,
        )
        for ds, split in ((validation, "validation"), (test, "test"))
    )
    return Splits(
        train=train,
        validation=validation,
        test=test,
        info=info,
        soft_labels=augment_lib.uses_soft_labels(names),
    )
