"""Interop with real Keras 3.15.1, both directions.

Keras -> Lamina: files Keras wrote (tests/fixtures/keras_files, made by
make_keras_fixtures.py) load in Lamina and predict what Keras predicted.

Lamina -> Keras: Lamina regenerates its files (tests/fixtures/lamina_models.py) and they
must equal the committed ones (tests/fixtures/lamina_files) structurally and numerically;
Keras's predictions on the committed files (keras_predictions.npz, recorded by
check_lamina_files_in_keras.py) must equal Lamina's. When the Keras venv exists, Keras
also opens the freshly written files in a subprocess.
"""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

import lamina
from tests.keras_venv import KERAS_ENV, KERAS_PYTHON

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
KERAS_FILES = os.path.join(FIXTURES, "keras_files")
LAMINA_FILES = os.path.join(FIXTURES, "lamina_files")
NAMES = ["dense", "conv", "batchnorm", "lstm", "gru", "embedding", "shared"]
FORMATS = [".keras", ".h5", ".weights.h5"]


def _fixture_models():
    spec = importlib.util.spec_from_file_location(
        "lamina_fixture_models", os.path.join(FIXTURES, "lamina_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(data):
    keys = sorted(k for k in data.files if k.startswith("x") and k != "x")
    return [data[k] for k in keys] if keys else data["x"]


def _load(path, ext):
    if ext == ".weights.h5":
        with zipfile.ZipFile(path + ".keras") as archive:
            model = lamina.models.model_from_json(archive.read("config.json").decode())
        model.load_weights(path + ext)
        return model
    return lamina.models.load_model(path + ext)


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_keras_files_load_in_lamina(name, ext):
    base = os.path.join(KERAS_FILES, name)
    data = np.load(base + ".npz")
    model = _load(base, ext)
    np.testing.assert_allclose(model.predict(_inputs(data), verbose=0), data["y"], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_keras_optimizer_state_is_restored(name):
    model = lamina.models.load_model(os.path.join(KERAS_FILES, name + ".keras"))
    with h5py.File(os.path.join(KERAS_FILES, name + ".weights.h5")) as h5:
        stored = h5["optimizer/vars"]
        assert len(stored) == len(model.optimizer.variables)
        for i, variable in enumerate(model.optimizer.variables):
            np.testing.assert_allclose(variable.numpy(), stored[str(i)][()], atol=0)
    assert int(model.optimizer.iterations.numpy()) == 4  # 2 epochs x 2 batches


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("lamina_files"))
    _fixture_models().write_all(folder)
    return folder


def _h5_tree(path_or_bytes):
    out = {}
    with h5py.File(path_or_bytes, "r") as h5:
        def visit(name, obj):
            attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                out[name] = ("dataset", obj.shape, obj.dtype.str, attrs, obj[()])
            else:
                out[name] = ("group", attrs)

        h5.visititems(visit)
        out["/"] = ("group", {k: np.asarray(v).tolist() for k, v in h5.attrs.items()})
    return out


def _assert_same_h5(fresh, committed):
    a, b = _h5_tree(fresh), _h5_tree(committed)
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key][:-1] == b[key][:-1] if a[key][0] == "dataset" else a[key] == b[key], key
        if a[key][0] == "dataset":
            np.testing.assert_allclose(a[key][-1], b[key][-1], atol=1e-5, err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_lamina_files_match_committed(regenerated, name):
    import io

    fresh, committed = os.path.join(regenerated, name), os.path.join(LAMINA_FILES, name)
    _assert_same_h5(fresh + ".weights.h5", committed + ".weights.h5")
    _assert_same_h5(fresh + ".h5", committed + ".h5")
    with zipfile.ZipFile(fresh + ".keras") as za, zipfile.ZipFile(committed + ".keras") as zb:
        assert [i.filename for i in za.infolist()] == [
            "metadata.json", "config.json", "model.weights.h5"]
        assert [i.filename for i in za.infolist()] == [i.filename for i in zb.infolist()]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in za.infolist())
        assert json.loads(za.read("config.json")) == json.loads(zb.read("config.json"))
        assert set(json.loads(za.read("metadata.json"))) == {
            "keras_version", "date_saved", "lamina_version"}
        _assert_same_h5(io.BytesIO(za.read("model.weights.h5")),
                        io.BytesIO(zb.read("model.weights.h5")))


@pytest.mark.parametrize("name", NAMES)
def test_keras_predictions_on_lamina_files(name):
    keras_predictions = np.load(os.path.join(LAMINA_FILES, "keras_predictions.npz"))
    data = np.load(os.path.join(LAMINA_FILES, name + ".npz"))
    for ext in FORMATS:
        np.testing.assert_allclose(keras_predictions[name + ext], data["y"], atol=1e-5)
        model = _load(os.path.join(LAMINA_FILES, name), ext)
        np.testing.assert_allclose(model.predict(_inputs(data), verbose=0),
                                   keras_predictions[name + ext], atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(KERAS_PYTHON is None, reason="no Keras venv (tests/keras_venv.py)")
def test_keras_opens_fresh_lamina_files(regenerated):
    script = os.path.join(FIXTURES, "check_lamina_files_in_keras.py")
    result = subprocess.run([KERAS_PYTHON, script, regenerated], capture_output=True, text=True,
                            timeout=600, env=KERAS_ENV, cwd=regenerated)
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 3 * len(NAMES), result.stdout + result.stderr
    assert all(r["ok"] for r in reports), [r for r in reports if not r["ok"]]
    assert result.returncode == 0
    assert sys.executable != KERAS_PYTHON
