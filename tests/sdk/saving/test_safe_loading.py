"""Hostile configs and files: each raises a clear error, imports nothing, creates nothing."""

import base64
import json
import marshal
import os
import sys
import zipfile

import h5py
import numpy as np
import pytest

import lamina
from lamina.saving import registry

PWNED = "/tmp/lamina_pwned_marker"


def _code():
    return base64.b64encode(marshal.dumps(compile(
        f"open({PWNED!r}, 'w')", "<x>", "exec"))).decode()


def _sequential(*layers):
    return {"module": "keras", "class_name": "Sequential", "config": {
        "name": "s", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer",
             "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"}},
            *layers]}}


def _dense(units=2, **extra):
    return {"module": "keras.layers", "class_name": "Dense",
            "config": {"name": "d", "units": units}, "registered_name": None, **extra}


LAMBDA = {"module": "keras.layers", "class_name": "Lambda", "config": {
    "name": "evil", "function": {"class_name": "__lambda__", "config": {
        "code": _code(), "defaults": None, "closure": None}}}, "registered_name": None}

HOSTILE = {
    "lambda_marshalled": (_sequential(LAMBDA), "safe_mode"),
    "module_os": (_sequential({"module": "os", "class_name": "system",
                               "config": {"command": f"touch {PWNED}"}}), "module='os'"),
    "module_subprocess": (_sequential({"module": "subprocess", "class_name": "Popen",
                                       "config": {"args": ["touch", PWNED]}}), "subprocess"),
    "module_builtins": (_sequential({"module": "builtins", "class_name": "eval",
                                     "config": {}}), "builtins"),
    "registered_name_trick": (_sequential({"module": "builtins", "class_name": "exec",
                                           "registered_name": "Custom>exec",
                                           "config": {}}), "builtins"),
    "enable_unsafe": (_sequential({"module": "keras.config",
                                   "class_name": "enable_unsafe_deserialization",
                                   "config": {}}), "keras.config"),
    "get_file": (_sequential({"module": "keras.utils", "class_name": "get_file",
                              "config": {"origin": "http://x"}}), "get_file"),
    "unknown_class": (_sequential({"module": "keras.layers", "class_name": "TFSMLayer",
                                   "config": {"filepath": "/tmp"}}), "TFSMLayer"),
    "nested_module_os": (_sequential(_dense(kernel_initializer=None) | {"config": {
        "name": "d", "units": 2, "kernel_initializer": {
            "module": "os", "class_name": "system", "config": {}}}}), "module='os'"),
    "dense_1e9": (_sequential(_dense(10**9)), "1000000000"),
    "dense_1e10_kernel": ({"module": "keras", "class_name": "Sequential", "config": {
        "name": "s", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer",
             "config": {"batch_shape": [None, 100000], "name": "in"}},
            _dense(100000)]}}, "10000000000"),
    "huge_input_shape": (_sequential() | {"config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 10**6, 10**6], "name": "in"}}]}}, "cap"),
}


@pytest.fixture
def quiet_world(tmp_path, monkeypatch):
    """Asserts that nothing was imported and no file was created by the test body."""
    registry.builtin_objects()
    monkeypatch.chdir(tmp_path)
    before_modules, before_files = set(sys.modules), set(os.listdir(tmp_path))
    yield tmp_path
    assert not os.path.exists(PWNED)
    assert set(sys.modules) - before_modules == set()
    assert set(os.listdir(tmp_path)) - before_files <= {"hostile.keras", "hostile.h5"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_config(name, quiet_world):
    config, needle = HOSTILE[name]
    with pytest.raises(ValueError, match=None) as info:
        lamina.models.model_from_config(config)
    assert needle in str(info.value), str(info.value)
    with pytest.raises(ValueError):
        lamina.models.model_from_json(json.dumps(config))


@pytest.mark.parametrize("name", ["lambda_marshalled", "module_os", "dense_1e9"])
def test_hostile_config_in_files(name, quiet_world):
    config, needle = HOSTILE[name]
    with zipfile.ZipFile(quiet_world / "hostile.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"")
    with h5py.File(quiet_world / "hostile.h5", "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.create_group("model_weights")
    for path in ("hostile.keras", "hostile.h5"):  # .h5 honours safe_mode too (CVE-2025-9905)
        with pytest.raises(ValueError) as info:
            lamina.models.load_model(quiet_world / path)
        assert needle in str(info.value)


def test_lambda_never_unmarshalled_even_unsafe(quiet_world):
    with pytest.raises(ValueError, match="never unmarshals"):
        lamina.models.model_from_config(HOSTILE["lambda_marshalled"][0], safe_mode=False)


def test_lambda_with_registered_function_needs_unsafe_mode():
    def double(x):
        return x * 2

    config = _sequential({"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "twice", "function": {"module": "builtins", "class_name": "function",
                                      "config": "double", "registered_name": "function"}}})
    with pytest.raises(ValueError, match="safe_mode"):
        lamina.models.model_from_config(config, custom_objects={"double": double})
    model = lamina.models.model_from_config(config, custom_objects={"double": double},
                                            safe_mode=False)
    np.testing.assert_allclose(model.predict(np.ones((2, 4)), verbose=0), 2 * np.ones((2, 4)))


def test_unknown_class_message_names_it():
    with pytest.raises(ValueError, match="'MyFancyLayer'"):
        lamina.models.model_from_config(_sequential(
            {"module": "keras.layers", "class_name": "MyFancyLayer", "config": {}}))


def _weights_file(path, build):
    with h5py.File(path, "w") as h5:
        h5.create_group("vars").attrs["name"] = "s"
        build(h5)


def _model():
    return lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(3)])


def test_shape_bomb_refused_before_reading(tmp_path):
    def build(h5):
        group = h5.create_group("layers/dense/vars")
        group.create_dataset("0", shape=(10**6, 10**6), dtype="float32", chunks=(1, 1024))
        group.create_dataset("1", data=np.zeros(3, "float32"))

    _weights_file(tmp_path / "bomb.weights.h5", build)
    assert os.path.getsize(tmp_path / "bomb.weights.h5") < 100_000
    with pytest.raises(ValueError, match="1000000000000 elements"):
        _model().load_weights(tmp_path / "bomb.weights.h5")


def test_shape_mismatch_refused(tmp_path):
    def build(h5):
        group = h5.create_group("layers/dense/vars")
        group.create_dataset("0", data=np.zeros((5, 3), "float32"))
        group.create_dataset("1", data=np.zeros(3, "float32"))

    _weights_file(tmp_path / "w.weights.h5", build)
    with pytest.raises(ValueError, match="Shape mismatch"):
        _model().load_weights(tmp_path / "w.weights.h5")


@pytest.mark.parametrize("kind", ["external_link", "soft_link", "external_storage"])
def test_hdf5_links_and_external_storage_refused(tmp_path, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        group = h5.create_group("vars")
        group.create_dataset("0", data=np.zeros((4, 3), "float32"))
        group.create_dataset("1", data=np.zeros(3, "float32"))
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 48)

    def build(h5):
        if kind == "external_link":
            h5["layers/dense/vars"] = h5py.ExternalLink(str(other), "/vars")
        elif kind == "soft_link":
            h5.create_group("real/vars")
            h5["real/vars"].create_dataset("0", data=np.zeros((4, 3), "float32"))
            h5["real/vars"].create_dataset("1", data=np.zeros(3, "float32"))
            h5.create_group("layers/dense")
            h5["layers/dense/vars"] = h5py.SoftLink("/real/vars")
        else:
            group = h5.create_group("layers/dense/vars")
            group.create_dataset("0", shape=(4, 3), dtype="float32",
                                 external=[(str(secret), 0, 48)])
            group.create_dataset("1", data=np.zeros(3, "float32"))

    _weights_file(tmp_path / "w.weights.h5", build)
    with pytest.raises(ValueError, match="Link|external"):
        _model().load_weights(tmp_path / "w.weights.h5")


def test_truncated_and_corrupt_files(tmp_path):
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "m.weights.h5")
    for name in ("m.keras", "m.h5", "m.weights.h5"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / ("cut_" + name)).write_bytes(data[: len(data) // 2])
        (tmp_path / ("junk_" + name)).write_bytes(b"not a model file" * 10)
    for name in ("cut_m.keras", "junk_m.keras"):
        with pytest.raises(ValueError, match="truncated or corrupt"):
            lamina.models.load_model(tmp_path / name)
    for name in ("cut_m.h5", "junk_m.h5"):
        with pytest.raises(ValueError, match="truncated, corrupt"):
            lamina.models.load_model(tmp_path / name)
    for name in ("cut_m.weights.h5", "junk_m.weights.h5"):
        with pytest.raises(ValueError, match="truncated, corrupt"):
            model.load_weights(tmp_path / name)


def test_corrupt_member_crc(tmp_path):
    model = _model()
    model.save(tmp_path / "m.keras")
    data = bytearray((tmp_path / "m.keras").read_bytes())
    index = data.index(b'"class_name"')
    data[index + 1] ^= 0xFF  # flip a byte inside config.json: the CRC no longer matches
    (tmp_path / "bad.keras").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        lamina.models.load_model(tmp_path / "bad.keras")


def test_enable_unsafe_deserialization_lifts_safe_mode_for_the_process():
    def double(x):
        return x * 2

    config = _sequential({"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "twice", "function": {"module": "builtins", "class_name": "function",
                                      "config": "double", "registered_name": "function"}}})
    lamina.config.enable_unsafe_deserialization()
    try:
        model = lamina.models.model_from_config(config, custom_objects={"double": double})
    finally:
        lamina.config._STATE["unsafe_deserialization"] = False
    np.testing.assert_allclose(model.predict(np.ones((2, 4)), verbose=0), 2 * np.ones((2, 4)))
    with pytest.raises(ValueError, match="safe_mode"):
        lamina.models.model_from_config(config, custom_objects={"double": double})
