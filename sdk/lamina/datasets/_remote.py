"""Where Keras's dataset files live, and their hashes: one table for every loader.

The loaders read :data:`ORIGIN_FOLDER` and :data:`CIFAR_ORIGIN_FOLDER` when called, so a
test (or a mirror) can point them elsewhere by setting these module attributes; the
files land in Keras's cache under Keras's names either way.
"""

from __future__ import annotations

import os

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR_ORIGIN_FOLDER = "https://www.cs.toronto.edu/~kriz/"

# The digests Keras 3.15.1 checks (sha256, or md5 for the two word indexes).
FILE_HASHES = {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "imdb.npz": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "imdb_word_index.json": "bfafd718b763782e994055a2d397834f",
    "reuters.npz": "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
    "reuters_word_index.json": "4d44cc38712099c9e383dc6e5f11a921",
    "boston_housing.npz": "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
    "california_housing.npz":
        "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f",
    "cifar-10-python.tar.gz":
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz":
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}


def fetch(remote_name: str, fname=None, **kwargs) -> str:
    """``get_file`` of ``ORIGIN_FOLDER + remote_name`` (cached as ``fname``, by default
    the same name), checked against Keras's hash when Keras checks one."""
    from lamina.utils.file_utils import get_file

    return get_file(fname=fname or remote_name, origin=ORIGIN_FOLDER + remote_name,
                    file_hash=FILE_HASHES.get(remote_name), **kwargs)


def fetch_cifar(archive: str, dirname: str) -> str:
    """Download and extract a CIFAR python tarball as Keras does; returns the directory
    the archive unpacks into."""
    from lamina.utils.file_utils import get_file

    path = get_file(fname=dirname, origin=CIFAR_ORIGIN_FOLDER + archive, extract=True,
                    file_hash=FILE_HASHES[archive])
    return os.fspath(path)
