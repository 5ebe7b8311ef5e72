"""Model files with ConvLSTM2D, EinsumDense and LoRA Dense, both directions with Keras 3.15.1.

Keras -> Lamina: tests/fixtures/layers/keras_files (made by make_keras_model_files.py in
the Keras venv) load in Lamina, with their optimizer state, and predict what Keras did.
Lamina -> Keras: tests/fixtures/layers/lamina_files (lamina_model_files.py) were opened by
Keras, whose predictions are recorded in keras_predictions.npz; Lamina regenerates them
identically; and when a Keras venv exists, Keras opens freshly written files.
"""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import lamina
from tests.keras_venv import KERAS_ENV, KERAS_PYTHON

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
HERE = os.path.join(FIXTURES, "layers")
LAMINA_NAMES = ["convlstm_einsum", "lora_dense", "attention_norms", "volumes"]


def _fixture_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "lamina_layer_model_files", os.path.join(HERE, "lamina_model_files.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_keras_convlstm_einsum_file_loads_in_lamina():
    base = os.path.join(HERE, "keras_files", "convlstm_einsum")
    data = np.load(base + ".npz")
    model = lamina.models.load_model(base + ".keras")
    assert [type(layer).__name__ for layer in model.layers][1:] == [
        "ConvLSTM2D", "ConvLSTM2D", "Reshape", "EinsumDense", "EinsumDense"]
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-5)
    assert int(model.optimizer.iterations.numpy()) == 2
    assert len(model.optimizer.variables) > 2  # Adam's moments came back too


@pytest.mark.parametrize("name", LAMINA_NAMES)
def test_keras_predictions_on_lamina_files(name):
    recorded = np.load(os.path.join(HERE, "lamina_files", "keras_predictions.npz"))
    data = np.load(os.path.join(HERE, "lamina_files", name + ".npz"))
    for ext in (".keras", ".h5", ".weights.h5"):
        np.testing.assert_allclose(recorded[name + ext], data["y"], atol=1e-5)
    model = lamina.models.load_model(os.path.join(HERE, "lamina_files", name + ".keras"))
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-5)


def test_lamina_regenerates_its_files(tmp_path):
    _fixture_module().write_all(str(tmp_path))
    for name in LAMINA_NAMES:
        fresh = np.load(tmp_path / (name + ".npz"))
        committed = np.load(os.path.join(HERE, "lamina_files", name + ".npz"))
        np.testing.assert_allclose(fresh["y"], committed["y"], atol=1e-5)
        with zipfile.ZipFile(tmp_path / (name + ".keras")) as a, zipfile.ZipFile(
                os.path.join(HERE, "lamina_files", name + ".keras")) as b:
            assert a.read("config.json") == b.read("config.json")


@pytest.mark.slow
@pytest.mark.skipif(KERAS_PYTHON is None, reason="no Keras venv (tests/keras_venv.py)")
def test_keras_opens_fresh_lamina_files(tmp_path):
    import json

    _fixture_module().write_all(str(tmp_path))
    script = os.path.join(FIXTURES, "check_lamina_files_in_keras.py")
    result = subprocess.run([KERAS_PYTHON, script, str(tmp_path)], capture_output=True,
                            text=True, timeout=600, env=KERAS_ENV, cwd=str(tmp_path))
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 3 * len(LAMINA_NAMES), result.stdout + result.stderr
    assert all(r["ok"] for r in reports), [r for r in reports if not r["ok"]]
    assert result.returncode == 0 and sys.executable != KERAS_PYTHON


@pytest.mark.parametrize("name, check", [
    ("stacked_cells", lambda m: type(m.layers[1].cell).__name__ == "StackedRNNCells"),
    ("attention_norms", lambda m: type(m.layers[1]).__name__ == "GroupedQueryAttention"),
])
def test_more_keras_files_load_in_lamina(name, check):
    base = os.path.join(HERE, "keras_files", name)
    data = np.load(base + ".npz")
    model = lamina.models.load_model(base + ".keras")
    assert check(model)
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-5)
