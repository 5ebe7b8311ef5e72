"""``lamina.saving.KerasFileEditor`` on Lamina-saved files, edited files loading back in
Lamina (and in Keras 3.15.1 when its venv exists), and hostile files refused."""

import json
import os
import subprocess

import h5py
import numpy as np
import pytest

import lamina
from lamina.saving import KerasFileEditor, limits
from tests.keras_venv import KERAS_ENV, KERAS_PYTHON

X = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")


def _two_dense():
    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(4, activation="relu"),
                               lamina.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, np.ones((5, 3), "float32"), epochs=1, verbose=0)
    return model


@pytest.fixture()
def saved(tmp_path):
    model = _two_dense()
    path = tmp_path / "m.keras"
    model.save(path)
    return model, path


def test_open_keras_file_reads_every_weight(saved, capsys):
    model, path = saved
    editor = KerasFileEditor(path)
    assert f"Keras model file '{path}'" in capsys.readouterr().out
    assert editor.config["class_name"] == "Sequential"
    assert editor.metadata["keras_version"].startswith("3.")
    layers = editor.weights_dict["layers"]
    assert list(layers) == ["dense", "dense_1"]
    np.testing.assert_array_equal(layers["dense"]["0"], model.layers[0].kernel.numpy())
    np.testing.assert_array_equal(layers["dense_1"]["1"], model.layers[1].bias.numpy())
    assert len(editor.weights_dict["optimizer"]) == len(model.optimizer.variables)
    name = model.layers[1].name  # paths are by class; names depend on earlier layers
    assert editor.object_metadata["/layers/dense_1"] == {"name": name}
    editor.summary()
    out = capsys.readouterr().out
    assert f"dense_1 ('{name}')" in out and "0: shape=(4, 4), dtype=float32" in out


def test_compare_counts_matches_and_mismatches(saved, capsys):
    model, path = saved
    editor = KerasFileEditor(path)
    result = editor.compare(model)
    assert result == {"status": "success", "error_count": 0,
                      "match_count": 4 + len(model.optimizer.variables)}
    editor.delete_weight("dense_1", "1")
    editor.add_weights("layers/dense", {"2": np.zeros(3, "float32")})
    capsys.readouterr()
    result = editor.compare(model)
    out = capsys.readouterr().out
    assert result["status"] == "error" and result["error_count"] == 2
    assert "...Weight /layers/dense_1/1 present in reference model, missing from saved file" in out
    assert "...Weight /layers/dense/2 present in saved file, missing from reference model" in out


def test_delete_rename_save_and_load_in_lamina(saved, tmp_path):
    model, path = saved
    editor = KerasFileEditor(path)
    editor.delete_object("layers/dense")
    editor.delete_object("optimizer")
    editor.rename_object("dense_1", "dense")
    edited = tmp_path / "edited.weights.h5"
    editor.save(edited)
    small = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(3)])
    small.load_weights(edited)
    np.testing.assert_array_equal(small.layers[0].kernel.numpy(), model.layers[1].kernel.numpy())
    np.testing.assert_array_equal(small.layers[0].bias.numpy(), model.layers[1].bias.numpy())


def test_add_object_rebuilds_a_deleted_layer(saved, tmp_path):
    model, path = saved
    editor = KerasFileEditor(path)
    kernel = np.full((4, 4), 0.5, "float32")
    editor.delete_object("dense")
    editor.add_object("layers/dense", {"0": kernel, "1": np.ones(4, "float32")})
    editor.resave_weights(tmp_path / "added.weights.h5")
    model.load_weights(tmp_path / "added.weights.h5")
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), np.ones(4))


def test_nested_objects_survive_a_resave(tmp_path):
    model = lamina.Sequential([lamina.Input((3, 2)), lamina.layers.LSTM(4),
                               lamina.layers.Dense(1)])
    model.save_weights(tmp_path / "lstm.weights.h5")
    editor = KerasFileEditor(tmp_path / "lstm.weights.h5")
    assert sorted(editor.weights_dict["layers"]["lstm"]["cell"]) == ["0", "1", "2"]
    editor.save(tmp_path / "again.weights.h5")
    clone = lamina.models.clone_model(model)
    clone.load_weights(tmp_path / "again.weights.h5")
    for a, b in zip(model.weights, clone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_errors_name_the_argument(saved, tmp_path):
    _, path = saved
    with pytest.raises(ValueError, match="Received: filepath=.*m.h5"):
        KerasFileEditor(tmp_path / "m.h5")
    editor = KerasFileEditor(path)
    with pytest.raises(ValueError, match="Received: target_name='a/b'"):
        editor.rename_object("dense", "a/b")
    with pytest.raises(ValueError, match="Source name 'nope' does not appear"):
        editor.delete_object("nope")
    with pytest.raises(ValueError, match="Path 'layers/nope' not found"):
        editor.delete_object("layers/nope")
    with pytest.raises(ValueError, match="Name '0' occurs more than once"):
        editor.delete_object("0")
    with pytest.raises(ValueError, match="Weight 7 not found in object dense"):
        editor.delete_weight("dense", "7")
    with pytest.raises(ValueError, match=r"Received: type\(weights\)=<class 'list'>"):
        editor.add_weights("dense", [np.zeros(1)])
    with pytest.raises(ValueError, match="Received: filepath=.*x.keras"):
        editor.save(tmp_path / "x.keras")
    editor.add_weights("dense", {"9": np.array(["text"])})
    with pytest.raises(ValueError, match="Received: dtype=<U4"):
        editor.save(tmp_path / "y.weights.h5")
    assert not (tmp_path / "y.weights.h5").exists()


def test_hostile_files_are_refused(tmp_path):
    with h5py.File(tmp_path / "link.weights.h5", "w") as h5:
        h5.create_group("layers/dense/vars")["0"] = h5py.ExternalLink("/etc/hosts", "/x")
    with pytest.raises(ValueError, match="ExternalLink"):
        KerasFileEditor(tmp_path / "link.weights.h5")
    with h5py.File(tmp_path / "big.weights.h5", "w") as h5:
        h5.create_group("layers/dense/vars").create_dataset("0", shape=(1000, 1000), dtype="f4")
    with limits.size_limit(10_000), pytest.raises(ValueError, match="over the cap of 10000"):
        KerasFileEditor(tmp_path / "big.weights.h5")
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a valid .keras file"):
        KerasFileEditor(tmp_path / "bad.keras")


@pytest.mark.slow
@pytest.mark.skipif(KERAS_PYTHON is None, reason="no Keras venv")
def test_edited_file_loads_in_keras(saved, tmp_path):
    model, path = saved
    editor = KerasFileEditor(path)
    editor.delete_object("optimizer")
    editor.delete_weight("dense_1", "1")
    editor.add_weights("dense_1", {"1": np.full(3, 2.0, "float32")})
    editor.save(tmp_path / "edited.weights.h5")
    model.layers[1].bias.assign(np.full(3, 2.0, "float32"))
    np.save(tmp_path / "expected.npy", model.predict(X, verbose=0))
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "config.json").write_text(model.to_json())
    script = f"""
import keras, numpy as np
model = keras.models.model_from_json(open({str(tmp_path / 'config.json')!r}).read())
model.load_weights({str(tmp_path / 'edited.weights.h5')!r})
y = model.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)
np.testing.assert_allclose(y, np.load({str(tmp_path / 'expected.npy')!r}), atol=1e-5)
print("ok")
"""
    result = subprocess.run([KERAS_PYTHON, "-c", script], capture_output=True, text=True,
                            env=KERAS_ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.slow
@pytest.mark.skipif(KERAS_PYTHON is None, reason="no Keras venv")
def test_keras_editor_sees_the_same_weights_dict(saved, capsys):
    _, path = saved
    editor = KerasFileEditor(path)

    def shapes(tree):
        return {k: shapes(v) if isinstance(v, dict) else list(v.shape) for k, v in tree.items()}

    script = f"""
import json
from keras.saving import KerasFileEditor
editor = KerasFileEditor({str(path)!r})
def shapes(tree):
    return {{k: shapes(v) if isinstance(v, dict) else list(v.shape) for k, v in tree.items()}}
print("RESULT" + json.dumps([shapes(editor.weights_dict), list(editor.object_metadata)]))
"""
    result = subprocess.run([KERAS_PYTHON, "-c", script], capture_output=True, text=True,
                            env=KERAS_ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT")][0]
    keras_shapes, keras_paths = json.loads(line[len("RESULT"):])
    assert shapes(editor.weights_dict) == keras_shapes
    assert list(editor.object_metadata) == keras_paths


def test_keras_written_lstm_file_resaves_whole(tmp_path):
    # Keras 3.15.1's own editor drops layers/lstm (its `vars` group is empty); Lamina keeps
    # the cell's weights, so the resaved file still loads into the model.
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "keras_files")
    editor = KerasFileEditor(os.path.join(folder, "lstm.weights.h5"))
    assert sorted(editor.weights_dict["layers"]["lstm_1"]["cell"]) == ["0", "1", "2"]
    model = lamina.models.load_model(os.path.join(folder, "lstm.keras"))
    data = np.load(os.path.join(folder, "lstm.npz"))
    for weight in model.weights:
        weight.assign(np.zeros(weight.shape, weight.data.dtype))
    editor.save(tmp_path / "lstm.weights.h5")
    model.load_weights(tmp_path / "lstm.weights.h5")
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-5)
