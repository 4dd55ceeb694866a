"""`load_cifar`: the official CIFAR-10/100 Python archives, read safely.

The files of https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10
python version", "CIFAR-100 python version") are Python 2 pickles of
dicts: each batch file holds `b"data"`, a `uint8` array of shape
`(n, 3072)` (the 1024 red, then green, then blue values of a 32x32 image,
row by row), and its labels (`b"labels"` in CIFAR-10, `b"fine_labels"`
and `b"coarse_labels"` in CIFAR-100); the meta file holds the class names.
A pickle can run any code while it loads, so these files are read by an
unpickler that can only build dicts, lists, strings, numbers and numpy
arrays (`_SafeUnpickler`); anything else is refused before it is created.
"""

import io
import os
import pickle
import tarfile
import zlib

import numpy as np

from keras_eexit.utils.validation import check_choice

SOURCE_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
"""Where the official archives are published."""

#: Per data set: the archive's file name, the folder it unpacks to, the
#: training and test batch files, the meta file, the label key of the
#: batches and the class-name key of the meta file.
LAYOUTS = {
    "cifar10": {
        "archive": "cifar-10-python.tar.gz",
        "folder": "cifar-10-batches-py",
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "meta": "batches.meta",
        "labels": "labels",
        "names": "label_names",
        "num_classes": 10,
        "title": "CIFAR-10 python version",
    },
    "cifar100": {
        "archive": "cifar-100-python.tar.gz",
        "folder": "cifar-100-python",
        "train": ("train",),
        "test": ("test",),
        "meta": "meta",
        "labels": "fine_labels",
        "names": "fine_label_names",
        "num_classes": 100,
        "title": "CIFAR-100 python version",
    },
}

IMAGE_SHAPE = (32, 32, 3)

# What an array in the official pickles is rebuilt with; the names are
# numpy 1's (the files') and numpy 2's.
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_NUMPY_RECONSTRUCT = np.empty(0).__reduce__()[0]


def _reconstruct(subtype, shape, dtype):
    """numpy's array constructor for pickles, for empty plain arrays (the
    data then comes from the pickle's state, as numpy writes it)."""
    if subtype is not np.ndarray or shape != (0,):
        raise pickle.UnpicklingError(
            f"refused to build an array of type {subtype!r} and shape "
            f"{shape!r}")
    return _NUMPY_RECONSTRUCT(np.ndarray, shape, dtype)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles built-in data and plain numpy arrays, nothing else."""

    def find_class(self, module, name):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(
                f"refused to load `{module}.{name}` (only numpy arrays are "
                "allowed in a CIFAR file)")
        if name == "_reconstruct":
            return _reconstruct
        return getattr(np, name)


class CIFARFormatError(ValueError):
    """A file that should be an official CIFAR pickle is not one."""


def _unpickle(data, where):
    try:
        record = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            IndexError, KeyError, AttributeError, MemoryError) as err:
        raise CIFARFormatError(
            f"{where} is not an official CIFAR pickle ({err}). Download "
            f"the archive again from {SOURCE_URL}.") from None
    if not isinstance(record, dict) or not all(
            isinstance(k, (bytes, str)) for k in record):
        raise CIFARFormatError(
            f"{where} is not an official CIFAR pickle (it holds a "
            f"{type(record).__name__}, not a dict with string keys).")
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v
            for k, v in record.items()}


def _field(record, key, where):
    if key not in record:
        raise CIFARFormatError(
            f"{where} is not an official CIFAR pickle: it has no `{key}` "
            f"entry (entries: {sorted(record)}).")
    return record[key]


def _batch(record, label_key, num_classes, where):
    data = _field(record, "data", where)
    labels = _field(record, label_key, where)
    size = int(np.prod(IMAGE_SHAPE))
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
            or data.ndim != 2 or data.shape[1] != size):
        raise CIFARFormatError(
            f"{where} is not an official CIFAR pickle: `data` must be a "
            f"uint8 array of shape (n, {size}).")
    if not isinstance(labels, (list, np.ndarray)) or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer))
            for v in labels):
        raise CIFARFormatError(
            f"{where} is not an official CIFAR pickle: `{label_key}` must "
            "be a list of integers.")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data) or (
            len(labels) and not 0 <= labels.min() <= labels.max()
            < num_classes):
        raise CIFARFormatError(
            f"{where} is not an official CIFAR pickle: {len(labels)} "
            f"labels in [0, {num_classes}) expected for {len(data)} "
            "images.")
    # Rows hold the red, green and blue planes; images are channels last.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_folder(path, files):
    """`{file: (bytes, where)}` of the extracted folder's `files`."""
    found = {}
    for name in files:
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise CIFARFormatError(
                f"{file} is missing: the folder {path} is not a complete "
                f"CIFAR folder. Extract the archive from {SOURCE_URL} "
                "again.")
        with open(file, "rb") as f:
            found[name] = (f.read(), file)
    return found


def _read_archive(path, folder, files):
    """`{file: (bytes, where)}` of `folder/file` members of the `.tar.gz`,
    read in one pass, in place (nothing is extracted)."""
    found = {}
    wanted = {f"{folder}/{name}": name for name in files}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar:
                name = wanted.get(info.name)
                if name is None:
                    continue
                where = f"{path}:{info.name}"
                if not info.isfile():
                    raise CIFARFormatError(
                        f"{where} is not a regular file.")
                found[name] = (tar.extractfile(info).read(), where)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise CIFARFormatError(
            f"{path} is not a readable .tar.gz archive ({err}). Download "
            f"it again from {SOURCE_URL}.") from None
    for member, name in wanted.items():
        if name not in found:
            raise CIFARFormatError(
                f"{path}:{member} is missing: {path} is not the official "
                f"archive. Download it again from {SOURCE_URL}.")
    return found


def _missing_error(path, layout, name):
    return FileNotFoundError(
        f"CIFAR data set {name!r} not found in {path!r}: expected "
        f"`{layout['archive']}` or its extracted folder "
        f"`{layout['folder']}/` there. Download "
        f"`{layout['archive']}` (\"{layout['title']}\") from "
        f"{SOURCE_URL} and put it (or what it unpacks to) in {path!r}; or "
        f"prepare the TensorFlow Datasets copy instead with "
        f"`tfds build {name} --data_dir DIR` and pass that `data_dir`.")


def find_cifar(path, name):
    """Where the official CIFAR files are under `path`, or `None`.

    Args:
        path: the archive, the extracted folder, or a directory holding
            either (the folder is preferred).
        name: `"cifar10"` or `"cifar100"`.

    Returns:
        The archive's or folder's path, or `None` if `path` holds neither.

    Example:

    >>> find_cifar("/no/such/dir", "cifar10") is None
    True
    """
    layout = LAYOUTS[check_choice("name", name, LAYOUTS)]
    path = os.path.expanduser(os.fspath(path))
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        return None
    if os.path.isfile(os.path.join(path, layout["meta"])):
        return path
    for candidate in (layout["folder"], layout["archive"]):
        full = os.path.join(path, candidate)
        if os.path.exists(full):
            return full
    return None


def _read_files(path, name):
    """The layout of `name` and `{file: (bytes, where)}` of its files."""
    layout = LAYOUTS[check_choice("name", name, LAYOUTS)]
    path = os.path.expanduser(os.fspath(path))
    found = find_cifar(path, name)
    if found is None:
        raise _missing_error(path, layout, name)
    files = layout["train"] + layout["test"] + (layout["meta"],)
    if os.path.isdir(found):
        return layout, _read_folder(found, files)
    return layout, _read_archive(found, layout["folder"], files)


def _class_names(record, layout):
    names = record.get(layout["names"])
    if (not isinstance(names, list)
            or len(names) != layout["num_classes"]
            or not all(isinstance(n, (bytes, str)) for n in names)):
        return None
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else n
                 for n in names)


def read_cifar(path, name):
    """`load_cifar`'s arrays and the class names, in one read.

    Args:
        path: as for `load_cifar`.
        name: `"cifar10"` or `"cifar100"`.

    Returns:
        `(((x_train, y_train), (x_test, y_test)), class_names)`, the class
        names a tuple of strings (the fine ones for CIFAR-100), or `None`
        if the meta file does not list them.
    """
    layout, files = _read_files(path, name)
    splits = []
    for split in ("train", "test"):
        images, labels = [], []
        for file in layout[split]:
            data, where = files[file]
            x, y = _batch(_unpickle(data, where), layout["labels"],
                          layout["num_classes"], where)
            images.append(x)
            labels.append(y)
        splits.append((np.concatenate(images), np.concatenate(labels)))
    names = _class_names(_unpickle(*files[layout["meta"]]), layout)
    return tuple(splits), names


def load_cifar(path, name):
    """Reads CIFAR-10 or CIFAR-100 from the official Python archive.

    Args:
        path: `cifar-10-python.tar.gz` / `cifar-100-python.tar.gz`, the
            folder it unpacks to (`cifar-10-batches-py/`,
            `cifar-100-python/`), or a directory holding either.
        name: `"cifar10"` or `"cifar100"` (the 100 fine labels).

    Returns:
        `((x_train, y_train), (x_test, y_test))`: `uint8` images of shape
        `(n, 32, 32, 3)` and `int64` labels, in the files' order (50,000
        and 10,000 images for the full sets).

    Raises:
        FileNotFoundError: if `path` holds neither the archive nor its
            folder (the message says what to download from where).
        CIFARFormatError: (a `ValueError`) if a file is not an official
            CIFAR pickle, including any pickle that would build other
            objects than numpy arrays, dicts, lists, strings and numbers.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_cifar(
        "~/data/cifar-10-python.tar.gz", "cifar10")
    x_train.shape  # (50000, 32, 32, 3)
    ```
    """
    return read_cifar(path, name)[0]
