"""The official CIFAR archives: read back exactly, refused when unsafe."""

import io
import os
import pickle

import numpy as np
import pytest

from keras_eexit.data import cifar_archive
from keras_eexit.data.cifar_archive import CIFARFormatError
from keras_eexit.data.cifar_archive import load_cifar
from tests.data.cifar_files import ARCHIVES
from tests.data.cifar_files import official_files
from tests.data.cifar_files import py2_pickle
from tests.data.cifar_files import write_archive
from tests.data.cifar_files import write_folder


def _check(result, expected):
    (x_train, y_train), (x_test, y_test) = result
    (ex_train, ey_train), (ex_test, ey_test), _ = expected
    for got, want in ((x_train, ex_train), (x_test, ex_test)):
        assert got.dtype == np.uint8 and got.shape[1:] == (32, 32, 3)
        np.testing.assert_array_equal(got, want)
    for got, want in ((y_train, ey_train), (y_test, ey_test)):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("form", ["archive", "folder"])
def test_reads_the_official_layout_back(tmp_path, name, form):
    folder, files, expected = official_files(name)
    if form == "archive":
        target = write_archive(str(tmp_path / ARCHIVES[name]), folder, files)
    else:
        target = write_folder(str(tmp_path), folder, files)
    # The file or folder itself, and the directory holding it.
    for path in (target, str(tmp_path)):
        _check(load_cifar(path, name), expected)
        assert cifar_archive.read_cifar(path, name)[1] == expected[2]
    # CIFAR-10 has five training batches of 3 images, CIFAR-100 one.
    (x_train, _), (x_test, _) = load_cifar(target, name)
    assert len(x_train) == (15 if name == "cifar10" else 3)
    assert len(x_test) == 3


def test_pixels_are_unpacked_as_red_green_blue_planes(tmp_path):
    folder, files, _ = official_files("cifar10", per_batch=1)
    row = np.zeros(3072, np.uint8)
    row[:1024] = 10   # red plane
    row[1024:2048] = 20
    row[2048 + 33] = 99  # blue, row 1, column 1
    files["test_batch"] = py2_pickle({"data": row[None], "labels": [4],
                                      "batch_label": "t",
                                      "filenames": ["a.png"]})
    write_folder(str(tmp_path), folder, files)
    (_, _), (x_test, y_test) = load_cifar(str(tmp_path), "cifar10")
    assert x_test[0, 5, 7].tolist() == [10, 20, 0]
    assert x_test[0, 1, 1].tolist() == [10, 20, 99]
    assert y_test.tolist() == [4]


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("payload", [
    pickle.dumps({b"data": _Boom(), b"labels": [0]}, protocol=2),
    pickle.dumps(_Boom(), protocol=4),
    b"not a pickle at all",
])
def test_a_pickle_that_builds_other_objects_is_refused(tmp_path, payload,
                                                       monkeypatch):
    ran = []
    monkeypatch.setattr(os, "system", lambda *a: ran.append(a))
    folder, files, _ = official_files("cifar10")
    files["data_batch_2"] = payload
    write_folder(str(tmp_path), folder, files)
    with pytest.raises(CIFARFormatError,
                       match="data_batch_2 is not an official CIFAR"):
        load_cifar(str(tmp_path), "cifar10")
    assert ran == []


@pytest.mark.parametrize("record, problem", [
    ([1, 2, 3], "not a dict"),
    ({"labels": [0]}, "no `data` entry"),
    ({"data": np.zeros((1, 3072), np.float32), "labels": [0]},
     "uint8 array"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "labels in"),
    ({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}, "labels in"),
    ({"data": np.zeros((1, 3072), np.uint8), "labels": ["a"]},
     "list of integers"),
])
def test_a_wrong_record_is_refused_with_its_problem(tmp_path, record,
                                                    problem):
    folder, files, _ = official_files("cifar10")
    files["test_batch"] = py2_pickle(record)
    write_archive(str(tmp_path / ARCHIVES["cifar10"]), folder, files)
    with pytest.raises(CIFARFormatError, match=problem):
        load_cifar(str(tmp_path), "cifar10")


def test_an_incomplete_archive_names_the_missing_file(tmp_path):
    folder, files, _ = official_files("cifar100")
    del files["test"]
    write_archive(str(tmp_path / ARCHIVES["cifar100"]), folder, files)
    with pytest.raises(CIFARFormatError,
                       match="cifar-100-python/test is missing"):
        load_cifar(str(tmp_path), "cifar100")


def test_links_and_broken_archives_are_refused(tmp_path):
    import tarfile

    folder, files, _ = official_files("cifar10")
    path = tmp_path / ARCHIVES["cifar10"]
    write_archive(str(path), folder, files)
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    linked = tmp_path / "linked" / ARCHIVES["cifar10"]
    linked.parent.mkdir()
    with tarfile.open(linked, "w:gz") as tar:
        for member, data in members:
            if member.name.endswith("test_batch"):
                member = tarfile.TarInfo(member.name)
                member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(member)
            else:
                tar.addfile(member, io.BytesIO(data))
    with pytest.raises(CIFARFormatError, match="not a regular file"):
        load_cifar(str(linked), "cifar10")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CIFARFormatError, match="not a readable .tar.gz"):
        load_cifar(str(path), "cifar10")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_data_says_what_to_download_and_where(tmp_path, name):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar(str(tmp_path), name)
    message = str(info.value)
    assert ARCHIVES[name] in message
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in message
    assert str(tmp_path) in message
    assert f"tfds build {name}" in message


def test_unknown_name_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match="'cifar10', 'cifar100'"):
        load_cifar(str(tmp_path), "cifar1000")


# --- through keras_eexit.data and the command line --------------------------


def test_load_arrays_reads_the_archive_like_the_tfds_copy(tmp_path):
    from keras_eexit import data
    from keras_eexit.data import tfds_source

    folder, files, expected = official_files("cifar10", per_batch=4)
    write_archive(str(tmp_path / ARCHIVES["cifar10"]), folder, files)
    arrays = data.load_arrays("cifar10", data_dir=str(tmp_path),
                              validation_split=0.25)
    (x_train, y_train), (x_test, y_test), names = expected
    mean, std = (np.array(v) for v in tfds_source.CHANNEL_STATS["cifar10"])

    def scaled(x):
        return ((x / 255.0 - mean) / std).astype("float32")

    # TFDS's train[:75%] / train[75%:] of the 20 training images.
    np.testing.assert_allclose(arrays["x_train"], scaled(x_train[:15]),
                               atol=1e-5)
    np.testing.assert_allclose(arrays["x_val"], scaled(x_train[15:]),
                               atol=1e-5)
    np.testing.assert_allclose(arrays["x_test"], scaled(x_test), atol=1e-5)
    np.testing.assert_array_equal(arrays["y_val"], y_train[15:])
    np.testing.assert_array_equal(arrays["y_test"], y_test)
    assert arrays["y_train"].dtype == np.int32
    info = arrays["info"]
    assert (info.num_classes, info.num_train, info.num_validation,
            info.num_test) == (10, 15, 5, 4)
    assert info.class_names == names
    assert info.input_shape == (32, 32, 3)


def test_load_pipelines_from_the_cifar100_folder(tmp_path):
    from keras_eexit import data

    folder, files, expected = official_files("cifar100", per_batch=8)
    write_folder(str(tmp_path), folder, files)
    splits = data.load("cifar100", data_dir=str(tmp_path), batch_size=4,
                       augment="flip_crop", image_size=16)
    assert splits.info.num_classes == 100
    assert splits.info.input_shape == (16, 16, 3)
    x, y = next(iter(splits.train))
    assert tuple(x.shape) == (4, 16, 16, 3) and y.dtype == "int32"
    labels = np.concatenate([y for _, y in splits.test.as_numpy_iterator()])
    np.testing.assert_array_equal(labels, expected[1][1])


def test_without_the_archive_the_tfds_error_names_both_ways(tmp_path):
    from keras_eexit import data

    with pytest.raises(ValueError) as info:
        data.load("cifar100", data_dir=str(tmp_path))
    message = str(info.value)
    assert "tfds build cifar100" in message
    assert "cifar-100-python.tar.gz" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in message


def test_train_command_reads_the_archive_from_data_dir(tmp_path, capsys):
    from keras_eexit.cli.main import main

    folder, files, _ = official_files("cifar10", per_batch=4)
    write_archive(str(tmp_path / ARCHIVES["cifar10"]), folder, files)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cifar10", "--data-dir",
                 str(tmp_path), "--model", "small_cnn", "--epochs", "1",
                 "--batch-size", "8", "--out", str(out)]) == 0
    assert (out / "model.keras").exists()
    assert "Test set of cifar10 (4 samples)" in capsys.readouterr().out


def test_train_command_without_the_data_fails_at_once(tmp_path, capsys):
    from keras_eexit.cli.main import main

    out = tmp_path / "run"
    assert main(["train", "--dataset", "cifar10", "--data-dir",
                 str(tmp_path), "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in message and "tfds build" in message
    assert not out.exists()
