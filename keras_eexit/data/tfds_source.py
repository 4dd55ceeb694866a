"""TensorFlow Datasets image classification sets, read offline only.

Nothing is ever downloaded: `tfds.load(..., download=False)` reads a data
set that was prepared beforehand (`tfds build NAME --data_dir DIR` on a
machine with internet access, or a copied TFDS directory). A set that is
not prepared raises a `ValueError` saying so.

Splits: the TFDS `test` split is the test set. When the set has no `test`
split but a `validation` one (imagenette, imagenet2012), `validation`
becomes the test set. The validation set is the TFDS `validation` split
when it exists and is not already the test set; otherwise it is carved
from the end of `train` by percentage (`train[:90%]` / `train[90%:]` for
`validation_split=0.1`), which does not depend on `seed`.

Pixels: images are read as stored (uint8), optionally resized
(`image_size`, bilinear with antialiasing, rounded back to the stored
dtype), scaled to float32 in [0, 1] per batch, then, for CIFAR-10 and
CIFAR-100 only, standardised per channel with the published training-set
statistics in `CHANNEL_STATS`. Other sets stay in [0, 1].
"""

from keras_eexit.data import cifar_archive
from keras_eexit.utils.lazy_import import tf

#: Per-channel (mean, std) of the training images scaled to [0, 1].
CHANNEL_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

#: Split names of well-known sets, used only when TFDS cannot tell (its
#: metadata is only known once a set is prepared, e.g. not under
#: `tfds.testing.mock_data`). Anything else is assumed to be train/test.
KNOWN_SPLITS = {
    "imagenette": ("train", "validation"),
    "imagewang": ("train", "validation"),
    "imagenet2012": ("train", "validation"),
    "imagenet_v2": ("test",),
    "oxford_flowers102": ("train", "validation", "test"),
    "stanford_dogs": ("train", "test"),
}


def base_name(name):
    """Returns the builder name: "imagenette/160px:1.0.0" -> "imagenette"."""
    return name.split(":")[0].split("/")[0]


def builder_names():
    """Returns the TFDS builder names known locally (no network access)."""
    import tensorflow_datasets as tfds

    return tfds.list_builders(with_community_datasets=False)


def is_tfds_name(name):
    """Whether `name` (possibly with a config or version) is a TFDS builder."""
    return base_name(name) in set(builder_names())


def _not_available_error(name, data_dir, err, embedded):
    where = (
        f"data_dir={data_dir!r}"
        if data_dir
        else "the default TFDS data_dir ($TFDS_DATA_DIR or "
        "~/tensorflow_datasets)"
    )
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(
        err
    ).__name__
    archive = ""
    layout = cifar_archive.LAYOUTS.get(name)
    if layout is not None:
        archive = (
            f" For {name}, the official Python archive also works: download "
            f"`{layout['archive']}` from {cifar_archive.SOURCE_URL} and put "
            f"it (or its folder `{layout['folder']}/`) in DIR."
        )
    return ValueError(
        f"Data set {name!r} is not available offline in {where} "
        f"(TFDS: {reason}). Nothing is downloaded at run time. Prepare it "
        f"once on a machine with internet access with "
        f"`tfds build {base_name(name)} --data_dir DIR` (or copy a prepared "
        f"TFDS directory), then pass `data_dir=DIR`.{archive} Or use an "
        f"embedded data set that needs no download: {sorted(embedded)}."
    )


def _split_specs(name, splits, validation_split):
    """Chooses the TFDS split strings of train, validation and test."""
    available = set(splits) or set(
        KNOWN_SPLITS.get(base_name(name), ("train", "test"))
    )
    if "train" not in available:
        raise ValueError(
            f"Data set {name!r} has no `train` split (splits: "
            f"{sorted(available)}), so it cannot be used for training."
        )
    if "test" in available:
        test = "test"
    elif "validation" in available:
        test = "validation"
    else:
        raise ValueError(
            f"Data set {name!r} has neither a `test` nor a `validation` "
            f"split (splits: {sorted(available)})."
        )
    if "validation" in available and test != "validation":
        return "train", "validation", test
    keep = round(100.0 * (1.0 - validation_split), 6)
    return f"train[:{keep:g}%]", f"train[{keep:g}%:]", test


def _count(ds):
    count = int(ds.cardinality())
    if count >= 0:
        return count
    return int(ds.reduce(0, lambda total, _: total + 1))


def load_tfds(name, validation_split, data_dir, image_size, embedded):
    """Reads a prepared TFDS image classification set.

    Args:
        name: TFDS name, optionally with config / version.
        validation_split: Fraction of `train` carved out as validation when
            the set has no usable `validation` split.
        data_dir: TFDS data directory, or `None` for the TFDS default.
        image_size: `None` or `(height, width)` to resize every image to.
        embedded: Names of the embedded sets, for the error message.

    Returns:
        A dict with `train`, `validation`, `test` (unbatched datasets of
        `(image, int32 label)`, images in their stored integer dtype),
        `to_float` and `normalise` (batch functions), `input_shape`,
        `num_classes`, `class_names`, `num_train`, `num_validation`,
        `num_test`.

    Raises:
        ValueError: if the set is not prepared offline, is not an image
            classification set, or has variable image sizes and no
            `image_size` was given.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise _not_available_error(name, data_dir, err, embedded) from err
    info = builder.info
    keys = info.supervised_keys
    features = info.features
    if (
        not isinstance(keys, tuple)
        or len(keys) != 2
        or not all(isinstance(key, str) for key in keys)
        or not isinstance(features[keys[0]], tfds.features.Image)
        or not isinstance(features[keys[1]], tfds.features.ClassLabel)
    ):
        raise ValueError(
            f"Data set {name!r} is not an image classification data set "
            f"(supervised keys: {keys!r}); keras_eexit.data.load needs "
            "(image, class label) pairs."
        )
    image_feature, label_feature = features[keys[0]], features[keys[1]]
    stored_shape = tuple(image_feature.shape)
    if image_size is None:
        if any(dim is None for dim in stored_shape):
            raise ValueError(
                f"Data set {name!r} has images of varying size "
                f"(shape {stored_shape}). Pass `image_size=(height, width)` "
                "to resize them."
            )
        input_shape = stored_shape
    else:
        if stored_shape[-1] is None:
            raise ValueError(
                f"Data set {name!r} has an unknown number of channels."
            )
        input_shape = (int(image_size[0]), int(image_size[1]), stored_shape[-1])
    input_shape = tuple(int(dim) for dim in input_shape)

    specs = _split_specs(name, info.splits.keys(), validation_split)
    try:
        datasets = tfds.load(
            name,
            split=list(specs),
            as_supervised=True,
            data_dir=data_dir,
            download=False,
            shuffle_files=False,
        )
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as err:
        raise _not_available_error(name, data_dir, err, embedded) from err

    stored_dtype = tf.as_dtype(image_feature.dtype)
    prepare = image_preparer(input_shape, image_size, stored_dtype)
    datasets = [
        ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE) for ds in datasets
    ]
    counts = [_count(ds) for ds in datasets]
    check_split_sizes(name, specs, counts)
    to_float, normalise = scaling(name, input_shape, stored_dtype)
    names = getattr(label_feature, "names", None)
    return {
        "train": datasets[0],
        "validation": datasets[1],
        "test": datasets[2],
        "to_float": to_float,
        "normalise": normalise,
        "input_shape": input_shape,
        "num_classes": int(label_feature.num_classes),
        "class_names": tuple(names) if names else None,
        "num_train": counts[0],
        "num_validation": counts[1],
        "num_test": counts[2],
    }


def image_preparer(input_shape, image_size, stored_dtype):
    """`(image, label)` -> the image resized if asked (bilinear with
    antialiasing, rounded back to the stored dtype) and of `input_shape`,
    the label `int32`."""

    def prepare(image, label):
        if image_size is not None:
            image = tf.image.resize(
                image, input_shape[:2], method="bilinear", antialias=True
            )
            if stored_dtype.is_integer:
                image = tf.clip_by_value(
                    tf.round(image), stored_dtype.min, stored_dtype.max
                )
            image = tf.cast(image, stored_dtype)
        image = tf.ensure_shape(image, input_shape)
        return image, tf.cast(label, tf.int32)

    return prepare


def check_split_sizes(name, specs, counts):
    """Raises if a split is empty."""
    for spec, count in zip(specs, counts):
        if count < 1:
            raise ValueError(
                f"Split {spec!r} of data set {name!r} is empty; choose a "
                "different `validation_split`."
            )


def scaling(name, input_shape, stored_dtype):
    """`(to_float, normalise)`: batch functions to [0, 1] floats, then,
    for CIFAR-10/100 images, standardised with `CHANNEL_STATS` (`None`
    otherwise)."""
    scale = float(stored_dtype.max) if stored_dtype.is_integer else 1.0

    def to_float(images):
        return tf.cast(images, tf.float32) / scale

    normalise = None
    stats = CHANNEL_STATS.get(base_name(name))
    if stats is not None and input_shape[-1] == len(stats[0]):
        mean = tf.constant(stats[0], tf.float32)
        std = tf.constant(stats[1], tf.float32)

        def normalise(images):
            return (images - mean) / std

    return to_float, normalise
