"""Small CIFAR archives in exactly the official format, for the tests.

The official files were written by Python 2's cPickle (protocol 2): every
`str` is a byte string (`SHORT_BINSTRING`/`BINSTRING` opcodes), and arrays
are rebuilt by `numpy.core.multiarray._reconstruct`. `Py2Pickler` writes
the same opcodes from Python 3.
"""

import io
import os
import pickle
import struct
import tarfile

import numpy as np

_RECONSTRUCT = np.empty(0).__reduce__()[0]


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2 did: `str` and `bytes` as byte strings."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data))
                       + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if obj is _RECONSTRUCT:  # numpy 1's name, as in the files
            self.write(pickle.GLOBAL
                       + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _batch(rng, n, name, label_keys, num_classes):
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    record = {
        "batch_label": f"{name} of 1",
        # Rows: the red plane, then green, then blue, each row by row.
        "data": images.transpose(0, 3, 1, 2).reshape(n, 3072).copy(),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }
    labels = rng.integers(0, num_classes, size=n)
    for key in label_keys:
        record[key] = [int(v) for v in labels]
    return record, images, labels


def official_files(name, per_batch=3, seed=0):
    """The files of the official archive: `(folder, {file: bytes},
    expected)` with `expected = ((x_train, y_train), (x_test, y_test),
    class names)`."""
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        folder, keys, classes = "cifar-10-batches-py", ["labels"], 10
        train_files = [f"data_batch_{i}" for i in range(1, 6)]
        test_files = ["test_batch"]
        names = [f"class{i}" for i in range(classes)]
        meta = ("batches.meta", {"label_names": names,
                                 "num_cases_per_batch": per_batch,
                                 "num_vis": 3072})
    else:
        folder, keys, classes = ("cifar-100-python",
                                 ["fine_labels", "coarse_labels"], 100)
        train_files, test_files = ["train"], ["test"]
        names = [f"fine{i}" for i in range(classes)]
        meta = ("meta", {"fine_label_names": names,
                         "coarse_label_names": [f"coarse{i}"
                                                for i in range(20)]})
    files, expected = {}, []
    for group in (train_files, test_files):
        xs, ys = [], []
        for file in group:
            record, x, y = _batch(rng, per_batch, file, keys, classes)
            files[file] = py2_pickle(record)
            xs.append(x)
            ys.append(y)
        expected.append((np.concatenate(xs), np.concatenate(ys)))
    files[meta[0]] = py2_pickle(meta[1])
    files["readme.html"] = b"<html></html>"
    return folder, files, (expected[0], expected[1], tuple(names))


def write_folder(root, folder, files):
    path = os.path.join(root, folder)
    os.makedirs(path)
    for file, data in files.items():
        with open(os.path.join(path, file), "wb") as f:
            f.write(data)
    return path


def write_archive(path, folder, files):
    with tarfile.open(path, "w:gz") as tar:
        for file, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{file}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


ARCHIVES = {"cifar10": "cifar-10-python.tar.gz",
            "cifar100": "cifar-100-python.tar.gz"}
