"""``lamina.datasets``' Keras loaders on small files in Keras's real formats, served by a
local HTTP server, checked against what Keras 3.15.1's loaders return for the same files
(tests/fixtures/datasets/make_fixtures.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from lamina import datasets
from lamina.datasets import _remote, cifar

from .conftest import FIXTURES

EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def _check(actual, expected):
    if isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _check(a, e)
    elif "sequences" in expected:
        assert isinstance(actual, np.ndarray) and actual.dtype == object
        assert [list(s) for s in actual] == expected["sequences"]
    else:
        assert str(actual.dtype) == expected["dtype"]
        assert list(actual.shape) == expected["shape"]
        digest = hashlib.sha256(np.ascontiguousarray(actual).tobytes()).hexdigest()
        assert digest == expected["sha256"]


def test_mnist_matches_keras_and_uses_keras_cache(remote, keras_home):
    _check(datasets.mnist.load_data(), EXPECTED["mnist"])
    assert (keras_home / "datasets" / "mnist.npz").is_file()
    assert remote.requests[0][0] == "/keras/mnist.npz"
    datasets.mnist.load_data()
    assert len(remote.requests) == 1  # cached


def test_fashion_mnist_reads_idx_files(remote, keras_home):
    _check(datasets.fashion_mnist.load_data(), EXPECTED["fashion_mnist"])
    assert sorted(p.name for p in (keras_home / "datasets" / "fashion-mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("index", range(5))
def test_imdb_preprocessing_matches_keras(remote, index):
    kwargs, expected = EXPECTED["imdb"][index]
    _check(datasets.imdb.load_data(**kwargs), expected)


@pytest.mark.parametrize("index", range(6))
def test_reuters_preprocessing_matches_keras(remote, index):
    kwargs, expected = EXPECTED["reuters"][index]
    _check(datasets.reuters.load_data(**kwargs), expected)


def test_word_indexes_and_label_names(remote):
    assert datasets.imdb.get_word_index() == EXPECTED["imdb_word_index"]
    assert datasets.reuters.get_word_index() == EXPECTED["reuters_word_index"]
    assert list(datasets.reuters.get_label_names()) == EXPECTED["reuters_label_names"]


def test_imdb_maxlen_that_keeps_nothing_raises(remote):
    with pytest.raises(ValueError, match="maxlen=2"):
        datasets.imdb.load_data(maxlen=2)


@pytest.mark.parametrize("index", range(3))
def test_boston_housing_matches_keras(remote, index):
    kwargs, expected = EXPECTED["boston_housing"][index]
    _check(datasets.boston_housing.load_data(**kwargs), expected)


@pytest.mark.parametrize("index", range(3))
def test_california_housing_matches_keras(remote, index):
    kwargs, expected = EXPECTED["california_housing"][index]
    _check(datasets.california_housing.load_data(**kwargs), expected)


def test_housing_argument_errors(remote):
    with pytest.raises(ValueError, match="test_split=1"):
        datasets.boston_housing.load_data(test_split=1)
    with pytest.raises(ValueError, match="version=medium"):
        datasets.california_housing.load_data(version="medium")


@pytest.mark.parametrize("mode", ["fine", "coarse"])
def test_cifar100_matches_keras(remote, keras_home, mode):
    expected = dict(EXPECTED["cifar100"])[mode]
    _check(datasets.cifar100.load_data(label_mode=mode), expected)
    assert (keras_home / "datasets" / "cifar-100-python-target_archive").is_file()
    assert (keras_home / "datasets" / "cifar-100-python-target" / "cifar-100-python").is_dir()


def test_cifar100_label_mode_error():
    with pytest.raises(ValueError, match="label_mode=medium"):
        datasets.cifar100.load_data(label_mode="medium")


def test_cifar10_batches_match_keras_and_assemble(remote, keras_home):
    (x_train, y_train), (x_test, y_test) = datasets.cifar10.load_data()
    root = keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    batches = {name: cifar.load_batch(root / name) for name in EXPECTED["cifar10_batches"]}
    for name, expected in EXPECTED["cifar10_batches"].items():
        data, labels = batches[name]
        _check(data, expected[0])
        assert labels == expected[1]
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    np.testing.assert_array_equal(
        x_train, np.concatenate([d for d, _ in train]).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y_train[:, 0], np.concatenate([lab for _, lab in train]))
    assert x_train.shape == (15, 32, 32, 3) and y_train.shape == (15, 1)
    assert x_train.dtype == y_train.dtype == x_test.dtype == y_test.dtype == np.uint8
    np.testing.assert_array_equal(x_test, batches["test_batch"][0].transpose(0, 2, 3, 1))


def test_keras_hash_rejects_a_file_that_is_not_keras(remote, monkeypatch, keras_home):
    monkeypatch.setitem(_remote.FILE_HASHES, "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b8"
                        "50d9dc2a2aedcf2cc48468fc17b673d1")
    with pytest.raises(ValueError, match="hash does not match"):
        datasets.mnist.load_data()
    assert not (keras_home / "datasets" / "mnist.npz").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_batch_with_code_is_refused(tmp_path, capfd):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [1]}))
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system"):
        cifar.load_batch(path)
    assert "pwned" not in capfd.readouterr().out


def test_cifar_tarball_with_code_is_refused_through_the_loader(remote, capfd):
    evil = pickle.dumps({b"data": _Evil(), b"fine_labels": [1]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("train", "test"):
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(evil)
            tar.addfile(info, io.BytesIO(evil))
    remote.files["/kriz/cifar-100-python.tar.gz"] = buf.getvalue()
    _remote.FILE_HASHES["cifar-100-python.tar.gz"] = hashlib.sha256(buf.getvalue()).hexdigest()
    with pytest.raises(pickle.UnpicklingError, match="Refusing to deserialize"):
        datasets.cifar100.load_data()
    assert "pwned" not in capfd.readouterr().out


def test_npz_object_member_with_code_is_refused(tmp_path, capfd):
    from lamina.datasets._safe_pickle import load_npz

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False,
                                                  "shape": (1,)})
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as zf:
        zf.writestr("x.npy", header.getvalue() + pickle.dumps(_Evil()))
        zf.writestr("ok.npy", _npy(np.arange(3)))
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system"):
        load_npz(tmp_path / "evil.npz")
    assert "pwned" not in capfd.readouterr().out


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_fashion_labels_are_idx_payload(remote, keras_home):
    (_, y_train), _ = datasets.fashion_mnist.load_data()
    raw = gzip.open(keras_home / "datasets" / "fashion-mnist" /
                    "train-labels-idx1-ubyte.gz").read()
    assert int.from_bytes(raw[:4], "big") == 2049 and list(y_train) == list(raw[8:])

