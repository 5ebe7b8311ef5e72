"""Sharded weights (``.weights.json`` + ``*_NNNNN.weights.h5``) as Keras 3.15.1 writes them.

The Keras-written set in tests/fixtures/saving (make_sharded_fixture.py) loads in Lamina
with equal weights and predictions; Lamina re-saving it writes the same index, byte for
byte, and the same shard contents; Lamina's sets load in Keras when its venv exists.
"""

import json
import os
import subprocess

import h5py
import numpy as np
import pytest

import lamina
from tests.keras_venv import KERAS_ENV, KERAS_PYTHON

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "saving")
KERAS_INDEX = os.path.join(FIXTURES, "keras_sharded.weights.json")
MAX_SHARD_SIZE = 2.5e-7  # as in make_sharded_fixture.py


def _keras_model():
    with open(os.path.join(FIXTURES, "keras_sharded.json")) as handle:
        model = lamina.models.model_from_json(handle.read())
    model.compile(optimizer="adam", loss="mse")
    return model


def _shards(folder, base):
    return sorted(n for n in os.listdir(folder) if n.startswith(base + "_"))


def _datasets(path):
    found = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
    return found


def test_keras_sharded_set_loads_with_equal_weights():
    data = np.load(os.path.join(FIXTURES, "keras_sharded.npz"))
    model = _keras_model()
    model.load_weights(KERAS_INDEX)
    for i, weight in enumerate(model.weights):
        np.testing.assert_array_equal(np.asarray(weight.numpy()), data[f"w{i}"])
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 1
    with h5py.File(os.path.join(FIXTURES, "keras_sharded_00003.weights.h5"), "r") as h5:
        last = h5["optimizer/vars"]
        key = sorted(last, key=int)[-1]
        np.testing.assert_array_equal(model.optimizer.variables[int(key)].numpy(), last[key][()])


def test_lamina_resave_matches_keras_files(tmp_path):
    model = _keras_model()
    model.load_weights(KERAS_INDEX)
    target = tmp_path / "keras_sharded.weights.json"
    model.save_weights(target, max_shard_size=MAX_SHARD_SIZE)
    ours, theirs = json.loads(target.read_text()), json.load(open(KERAS_INDEX))
    assert ours["weight_map"] == theirs["weight_map"]
    assert target.read_text() == json.dumps(ours, indent=4)  # Keras's formatting
    assert _shards(tmp_path, "keras_sharded") == _shards(FIXTURES, "keras_sharded")
    total = 0
    for name in _shards(FIXTURES, "keras_sharded"):
        mine, keras = _datasets(tmp_path / name), _datasets(os.path.join(FIXTURES, name))
        assert sorted(mine) == sorted(keras)
        for key, value in keras.items():
            np.testing.assert_array_equal(mine[key], value)
        total += sum(value.nbytes for value in mine.values())
    # Keras on JAX stores `iterations` as int32, Lamina (like Keras on TF/torch) as int64.
    assert ours["metadata"]["total_size"] == float(total)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_roundtrip_and_group_split_across_shards(tmp_path):
    model = lamina.Sequential([lamina.Input((5,)), lamina.layers.Dense(6), lamina.layers.Dense(2)])
    # 120-byte kernel and 24-byte bias of the first layer cannot share a 130-byte shard.
    model.save_weights(tmp_path / "m.weights.json", max_shard_size=130 / 1024**3)
    index = json.loads((tmp_path / "m.weights.json").read_text())
    assert index["weight_map"]["/layers/dense/vars"] == ["m_00000.weights.h5", "m_00001.weights.h5"]
    assert index["metadata"]["total_size"] == 4.0 * (30 + 6 + 12 + 2)
    other = lamina.models.clone_model(model)
    other.load_weights(tmp_path / "m.weights.json")
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_weights_h5_name_is_renamed_with_a_warning(tmp_path):
    model = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(1)])
    with pytest.warns(UserWarning, match="renamed to .*w.weights.json"):
        lamina.saving.save_weights(model, tmp_path / "w.weights.h5", max_shard_size=1)
    assert sorted(os.listdir(tmp_path)) == ["w.weights.json", "w_00000.weights.h5"]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1GB", True])
def test_bad_max_shard_size_is_named(tmp_path, bad):
    model = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"Received: max_shard_size="):
        model.save_weights(tmp_path / "w.weights.json", max_shard_size=bad)
    assert os.listdir(tmp_path) == []


def test_errors_for_names_oversized_variables_and_overwrite(tmp_path):
    model = lamina.Sequential([lamina.Input((20,)), lamina.layers.Dense(20)])
    with pytest.raises(ValueError, match="must end in `.weights.json`"):
        model.save_weights(tmp_path / "w.h5", max_shard_size=1)
    with pytest.raises(ValueError, match="must end in `.weights.h5`"):
        model.save_weights(tmp_path / "w.weights.json")
    with pytest.raises(ValueError, match="layers/dense/vars/0 .*exceeds the maximum shard"):
        model.save_weights(tmp_path / "w.weights.json", max_shard_size=1e-6)
    assert os.listdir(tmp_path) == []
    model.save_weights(tmp_path / "w.weights.json", max_shard_size=1)
    with pytest.raises(FileExistsError):
        model.save_weights(tmp_path / "w.weights.json", max_shard_size=1, overwrite=False)


def _write_index(tmp_path, weight_map):
    path = tmp_path / "h.weights.json"
    path.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return path


@pytest.mark.parametrize("weight_map, message", [
    ({"/layers/dense/vars": "../x.weights.h5"}, "plain `.weights.h5` names"),
    ({"/layers/dense/vars": ["/etc/passwd"]}, "plain `.weights.h5` names"),
    ({"/layers/dense/vars": "missing_00000.weights.h5"}, "is missing"),
    ([], "'weight_map' object"),
])
def test_hostile_or_broken_indexes_are_refused(tmp_path, weight_map, message):
    model = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(1)])
    path = _write_index(tmp_path, weight_map) if weight_map != [] else tmp_path / "h.weights.json"
    if weight_map == []:
        path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=message):
        model.load_weights(path)


def test_shard_with_external_link_is_refused(tmp_path):
    model = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(1)])
    with h5py.File(tmp_path / "h_00000.weights.h5", "w") as h5:
        group = h5.create_group("layers/dense/vars")
        group["0"] = h5py.ExternalLink("/etc/hosts", "/x")
        group["1"] = np.zeros(1, "float32")
    path = _write_index(tmp_path, {"/layers/dense/vars": ["h_00000.weights.h5"]})
    with pytest.raises(ValueError, match="ExternalLink"):
        model.load_weights(path)


@pytest.mark.slow
@pytest.mark.skipif(KERAS_PYTHON is None, reason="no Keras venv")
def test_lamina_sharded_set_loads_in_keras(tmp_path):
    data = np.load(os.path.join(FIXTURES, "keras_sharded.npz"))
    model = _keras_model()
    model.load_weights(KERAS_INDEX)
    model.fit(data["x"], np.ones((6, 3), "float32"), epochs=1, batch_size=3, verbose=0)
    model.save_weights(tmp_path / "ours.weights.json", max_shard_size=MAX_SHARD_SIZE)
    # 130 bytes: the first layer's 128-byte kernel and its bias land in different shards.
    model.save_weights(tmp_path / "split.weights.json", max_shard_size=130 / 1024**3)
    split = json.loads((tmp_path / "split.weights.json").read_text())["weight_map"]
    assert split["/layers/dense/vars"] == ["split_00000.weights.h5", "split_00001.weights.h5"]
    np.save(tmp_path / "expected.npy", model.predict(data["x"], verbose=0))
    script = f"""
import json, keras, numpy as np
for name in ("ours", "split"):
    model = keras.models.model_from_json(
        open({os.path.join(FIXTURES, 'keras_sharded.json')!r}).read())
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.load_weights({str(tmp_path)!r} + "/" + name + ".weights.json")
    x = np.load({os.path.join(FIXTURES, 'keras_sharded.npz')!r})["x"]
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               np.load({str(tmp_path / 'expected.npy')!r}), atol=1e-5)
    print(name, "iterations", int(model.optimizer.iterations))
"""
    result = subprocess.run([KERAS_PYTHON, "-c", script], capture_output=True, text=True,
                            env=KERAS_ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ours iterations 3" in result.stdout and "split iterations 3" in result.stdout


def test_layers_that_write_their_own_entries_shard_too(tmp_path):
    lookup = lamina.layers.StringLookup(output_mode="tf_idf")
    lookup.adapt(np.array(["a", "b", "a", "c"]))
    model = lamina.Sequential([lamina.Input((2,), dtype="string"), lookup])
    model.save_weights(tmp_path / "s.weights.json", max_shard_size=1)
    index = json.loads((tmp_path / "s.weights.json").read_text())
    assert index["weight_map"] == {"/layers/string_lookup/vars": "s_00000.weights.h5"}
    fresh = lamina.layers.StringLookup(output_mode="tf_idf", vocabulary=["a", "b", "c"],
                                       idf_weights=[0.0, 0.0, 0.0])
    other = lamina.Sequential([lamina.Input((2,), dtype="string"), fresh])
    other.load_weights(tmp_path / "s.weights.json")
    np.testing.assert_array_equal(np.asarray(fresh.idf_weights), np.asarray(lookup.idf_weights))


def test_crash_while_renaming_shards_leaves_no_mixed_set(tmp_path, monkeypatch):
    model = lamina.Sequential([lamina.Input((5,)), lamina.layers.Dense(6), lamina.layers.Dense(2)])
    index = tmp_path / "m.weights.json"
    model.save_weights(index, max_shard_size=130 / 1024**3)
    for weight in model.weights:
        weight.assign(weight.numpy() + 1.0)
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the second shard's rename (after the first shard's two)
            raise OSError("disk gone")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        model.save_weights(index, max_shard_size=130 / 1024**3)
    monkeypatch.undo()
    assert not index.exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    with pytest.raises(FileNotFoundError):
        model.load_weights(index)


def test_resaving_fewer_shards_removes_the_old_ones(tmp_path):
    model = lamina.Sequential([lamina.Input((5,)), lamina.layers.Dense(6), lamina.layers.Dense(2)])
    (tmp_path / "unrelated_00009.weights.h5").write_bytes(b"keep")
    model.save_weights(tmp_path / "m.weights.json", max_shard_size=130 / 1024**3)
    assert len(_shards(tmp_path, "m")) == 2
    model.save_weights(tmp_path / "m.weights.json", max_shard_size=1)
    assert _shards(tmp_path, "m") == ["m_00000.weights.h5"]
    assert (tmp_path / "unrelated_00009.weights.h5").read_bytes() == b"keep"
    lamina.models.clone_model(model).load_weights(tmp_path / "m.weights.json")
