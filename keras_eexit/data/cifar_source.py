"""CIFAR-10/100 from the official Python archive, as a data source.

`load_cifar_source` gives what `tfds_source.load_tfds` gives for the TFDS
copy of the same set, so `keras_eexit.data.load("cifar10",
data_dir=DIR)` yields the same pipelines whichever of the two `DIR`
holds: the TFDS test split is the archive's test batch, the validation
split is the end of the training set (`train[90%:]` for
`validation_split=0.1`, as TFDS slices it, independent of the seed), and
pixels are scaled and standardised with the same statistics.
"""

from keras_eexit.data import cifar_archive
from keras_eexit.data import tfds_source
from keras_eexit.utils.lazy_import import tf


def has_cifar_archive(name, data_dir):
    """Whether `data_dir` holds the official archive of `name` (or its
    folder); `False` for any other name or `data_dir=None`.

    Example:

    >>> has_cifar_archive("mnist", "/data")
    False
    """
    return (
        data_dir is not None
        and name in cifar_archive.LAYOUTS
        and cifar_archive.find_cifar(data_dir, name) is not None
    )


def load_cifar_source(name, data_dir, validation_split, image_size):
    """Reads the official archive into the dict `load_tfds` returns.

    Args:
        name: `"cifar10"` or `"cifar100"`.
        data_dir: the archive, its folder, or a directory holding either.
        validation_split: fraction of the training set held out, from its
            end.
        image_size: `None` or `(height, width)` to resize every image to.

    Returns:
        A dict with `train`, `validation`, `test` (unbatched datasets of
        `(uint8 image, int32 label)`), `to_float`, `normalise`,
        `input_shape`, `num_classes`, `class_names`, `num_train`,
        `num_validation`, `num_test`.
    """
    ((x_train, y_train), (x_test, y_test)), names = (
        cifar_archive.read_cifar(data_dir, name))
    keep = round(len(x_train) * (1.0 - validation_split))
    parts = [(x_train[:keep], y_train[:keep]),
             (x_train[keep:], y_train[keep:]), (x_test, y_test)]
    percent = f"{round(100.0 * (1.0 - validation_split), 6):g}%"
    specs = (f"train[:{percent}]", f"train[{percent}:]", "test")
    counts = [len(y) for _, y in parts]
    tfds_source.check_split_sizes(name, specs, counts)
    stored_shape = cifar_archive.IMAGE_SHAPE
    input_shape = stored_shape if image_size is None else (
        int(image_size[0]), int(image_size[1]), stored_shape[-1])
    prepare = tfds_source.image_preparer(input_shape, image_size, tf.uint8)
    datasets = [
        tf.data.Dataset.from_tensor_slices((x, y)).map(
            prepare, num_parallel_calls=tf.data.AUTOTUNE)
        for x, y in parts
    ]
    to_float, normalise = tfds_source.scaling(name, input_shape, tf.uint8)
    return {
        "train": datasets[0],
        "validation": datasets[1],
        "test": datasets[2],
        "to_float": to_float,
        "normalise": normalise,
        "input_shape": input_shape,
        "num_classes": cifar_archive.LAYOUTS[name]["num_classes"],
        "class_names": names,
        "num_train": counts[0],
        "num_validation": counts[1],
        "num_test": counts[2],
    }
