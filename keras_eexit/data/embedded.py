"""Data sets that need no download: scikit-learn digits and MNIST-1D.

Both come back as numpy arrays split into train / validation / test.

* `"digits"`: scikit-learn's `load_digits` (1,797 grey 8x8 images of the
  digits 0-9, pixel values 0..16), scaled to [0, 1] by dividing by 16 and
  shaped `(8, 8, 1)`. A stratified 20% test split is drawn with a fixed
  seed (`DIGITS_SPLIT_SEED`), so test numbers stay comparable across runs;
  the validation split is then carved, stratified, from the remaining 80%
  with the caller's `seed`. With the defaults: 1,293 train, 144
  validation, 360 test.
* `"mnist1d"`: the MNIST-1D benchmark (Greydanus, 2020) generated locally
  by the `mnist1d` package's `make_dataset` with the package's default
  arguments (generation seed 42, 40-step signals, standardised to zero
  mean and unit variance) except `num_samples`, which defaults to 10,000
  here (the package default is 5,000). The package's own 80/20 train/test
  split is kept; the validation split is carved, stratified, from the
  training part with the caller's `seed`. With the defaults: 7,200 train,
  800 validation, 2,000 test. Shape `(40, 1)`. Generated arrays are cached
  as `.npz` under `cache_dir()` (never pickled).
"""

import hashlib
import importlib.metadata
import json
import os
import random

import numpy as np

from keras_eexit.data import cache as cache_lib

#: Fraction of `digits` held out as the test split.
DIGITS_TEST_FRACTION = 0.2
#: Seed of the digits test split (fixed, independent of `seed`).
DIGITS_SPLIT_SEED = 0
#: Default number of generated MNIST-1D examples (package default: 5,000).
MNIST1D_DEFAULT_SAMPLES = 10_000
#: Fewest examples per class accepted for a generated data set.
MIN_SAMPLES_PER_CLASS = 10

CLASS_NAMES = tuple(str(digit) for digit in range(10))


def carve(x, y, fraction, seed):
    """Splits `(x, y)` into two parts, the second holding `fraction` of it.

    The split is stratified by label when every class can be represented
    in both parts, and a plain seeded random split otherwise.

    Args:
        x: Inputs, first axis = examples.
        y: Integer labels.
        fraction: Share of examples in the second part, in (0, 1).
        seed: Integer seed of the split.

    Returns:
        `(x_first, y_first, x_second, y_second)`.
    """
    from sklearn.model_selection import train_test_split

    num_second = int(np.ceil(fraction * len(y)))
    num_classes = len(np.unique(y))
    counts = np.bincount(y)
    stratify = (
        y
        if min(num_second, len(y) - num_second) >= num_classes
        and counts[counts > 0].min() >= 2
        else None
    )
    x_first, x_second, y_first, y_second = train_test_split(
        x, y, test_size=num_second, random_state=seed, stratify=stratify
    )
    return x_first, y_first, x_second, y_second


def digits_arrays(validation_split, seed):
    """Loads scikit-learn digits as split numpy arrays.

    Args:
        validation_split: Fraction of the non-test data used for validation.
        seed: Seed of the validation split.

    Returns:
        A dict with `x_train`, `y_train`, `x_val`, `y_val`, `x_test`,
        `y_test` (`float32` images in [0, 1] of shape `(N, 8, 8, 1)`,
        `int32` labels) and `class_names`.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    x_rest, y_rest, x_test, y_test = carve(
        x, y, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED
    )
    x_train, y_train, x_val, y_val = carve(
        x_rest, y_rest, validation_split, seed
    )
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_val": x_val,
        "y_val": y_val,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": CLASS_NAMES,
    }


def _mnist1d_args(num_samples):
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    args.num_samples = int(num_samples)
    return args


def mnist1d_cache_path(num_samples=MNIST1D_DEFAULT_SAMPLES):
    """Returns the cache file of MNIST-1D generated with `num_samples`.

    The name is keyed by every generation argument and the `mnist1d`
    package version, so a change to either yields a new file.
    """
    args = dict(vars(_mnist1d_args(num_samples)))
    args.pop("url", None)
    args["mnist1d_version"] = importlib.metadata.version("mnist1d")
    digest = hashlib.sha256(
        json.dumps(args, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return os.path.join(
        cache_lib.cache_dir(), f"mnist1d-n{int(num_samples)}-{digest}.npz"
    )


def _generate_mnist1d(num_samples):
    """Runs `mnist1d.data.make_dataset` without global RNG side effects."""
    from mnist1d.data import make_dataset

    args = _mnist1d_args(num_samples)
    # make_dataset reseeds the global `random` and `np.random` generators
    # (mnist1d.utils.set_seed); put the caller's state back afterwards.
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {
        "x": np.asarray(data["x"], dtype="float32"),
        "y": np.asarray(data["y"], dtype="int32"),
        "x_test": np.asarray(data["x_test"], dtype="float32"),
        "y_test": np.asarray(data["y_test"], dtype="int32"),
    }


def _valid_mnist1d(arrays, num_samples):
    if arrays is None:
        return False
    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    expected_total = (int(num_samples) // 10) * 10
    return (
        x.ndim == 2
        and x_test.ndim == 2
        and x.shape[1] == x_test.shape[1] == 40
        and len(x) == len(y)
        and len(x_test) == len(y_test)
        and len(y) + len(y_test) == expected_total
        and x.dtype == np.float32
        and y.dtype == np.int32
    )


def mnist1d_raw(num_samples=MNIST1D_DEFAULT_SAMPLES):
    """Returns the generated MNIST-1D arrays, from the cache when possible.

    Args:
        num_samples: Number of examples to generate (split 80/20 into
            `x`/`x_test` by the package).

    Returns:
        A dict with `x`, `y`, `x_test`, `y_test` (`float32` signals of
        shape `(N, 40)`, `int32` labels).
    """
    path = mnist1d_cache_path(num_samples)
    keys = ("x", "y", "x_test", "y_test")
    arrays = cache_lib.read_npz(path, keys)
    if _valid_mnist1d(arrays, num_samples):
        return arrays
    arrays = _generate_mnist1d(num_samples)
    cache_lib.write_npz(path, arrays)
    return arrays


def mnist1d_arrays(validation_split, seed, num_samples=None):
    """Loads (generating if needed) MNIST-1D as split numpy arrays.

    Args:
        validation_split: Fraction of the package's training part used for
            validation.
        seed: Seed of the validation split.
        num_samples: Total number of examples; `None` means 10,000.

    Returns:
        A dict with `x_train`, `y_train`, `x_val`, `y_val`, `x_test`,
        `y_test` (`float32` signals of shape `(N, 40, 1)`, `int32` labels)
        and `class_names`.
    """
    if num_samples is None:
        num_samples = MNIST1D_DEFAULT_SAMPLES
    raw = mnist1d_raw(num_samples)
    x_train, y_train, x_val, y_val = carve(
        raw["x"][..., None], raw["y"], validation_split, seed
    )
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_val": x_val,
        "y_val": y_val,
        "x_test": raw["x_test"][..., None],
        "y_test": raw["y_test"],
        "class_names": CLASS_NAMES,
    }


#: Embedded data sets: name -> number of classes.
EMBEDDED = {"digits": 10, "mnist1d": 10}
#: Shape of one example of each embedded data set.
EMBEDDED_SHAPES = {"digits": (8, 8, 1), "mnist1d": (40, 1)}
