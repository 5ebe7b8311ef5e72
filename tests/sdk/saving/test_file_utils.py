"""Atomic writes: a failed save leaves neither a partial file nor a temp file behind."""

import os

import numpy as np
import pytest

import lamina
from lamina.saving.file_utils import atomic_path


def _model():
    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(3), lamina.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.weights.h5"])
def test_failed_write_leaves_previous_file(tmp_path, name):
    model = _model()
    path = tmp_path / name
    (model.save_weights if name.endswith(".weights.h5") else model.save)(path)
    before = path.read_bytes()
    # The second layer's kernel cannot be stored in HDF5: the write fails midway,
    # after the first layer's datasets were written.
    model.layers[1].kernel.data = np.empty((3, 2), dtype=object)
    with pytest.raises(TypeError):
        (model.save_weights if name.endswith(".weights.h5") else model.save)(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [name]


def test_failed_first_write_creates_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.bin") as tmp:
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_overwrite_false_and_missing_folder(tmp_path):
    model = _model()
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "missing" / "m.keras")


def test_extension_errors(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="Invalid filepath extension"):
        model.save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="must end in `.weights.h5`"):
        model.save_weights(tmp_path / "m.h5x")
