"""``weights=`` of the applications: Keras's published file names and URLs, the
``~/.keras/models`` cache, downloads through ``lamina.utils.get_file``, and legacy
``.h5`` files matched by Keras's layer order.

The MobileNet file was written by real Keras (``make_keras_outputs.py``) in the layout of
Keras's published weights; the local HTTP server stands in for Keras's storage.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import h5py
import numpy as np
import pytest

import lamina
from lamina import applications
from lamina.applications import _common, mobilenet

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "applications"
MOBILENET_FILE = FIXTURES / "mobilenet_2_5_128_tf_no_top.h5"
MOBILENET_IO = np.load(FIXTURES / "mobilenet_io.npz")


def _mobilenet(weights):
    lamina.backend.clear_session()
    return applications.MobileNet(alpha=0.25, include_top=False, input_shape=(128, 128, 3),
                                  weights=weights)


def _assert_keras_outputs(model):
    out = model.predict(MOBILENET_IO["x"], verbose=0)
    np.testing.assert_allclose(out, MOBILENET_IO["y"], rtol=1e-4, atol=1e-4)


def test_imagenet_weights_come_from_the_cache(keras_home):
    cached = keras_home / "models" / "mobilenet_2_5_128_tf_no_top.h5"
    cached.parent.mkdir(parents=True)
    shutil.copy(MOBILENET_FILE, cached)
    _assert_keras_outputs(_mobilenet("imagenet"))


def test_imagenet_weights_are_downloaded_once(keras_home, http_server, monkeypatch):
    http_server.files["/mobilenet/mobilenet_2_5_128_tf_no_top.h5"] = MOBILENET_FILE.read_bytes()
    monkeypatch.setattr(mobilenet, "BASE_WEIGHT_PATH", http_server.url("/mobilenet/"))
    _assert_keras_outputs(_mobilenet("imagenet"))
    assert (keras_home / "models" / "mobilenet_2_5_128_tf_no_top.h5").exists()
    _mobilenet("imagenet")
    assert len(http_server.requests) == 1


def test_weights_file_path(tmp_path):
    path = tmp_path / "my_weights.h5"
    shutil.copy(MOBILENET_FILE, path)
    _assert_keras_outputs(_mobilenet(str(path)))


def test_hashed_download_rejects_a_wrong_file(keras_home, http_server, monkeypatch):
    from lamina.applications import mobilenet_v3

    name = "weights_mobilenet_v3_small_minimalistic_224_1.0_float_no_top_v2.h5"
    http_server.files[f"/v3/{name}"] = MOBILENET_FILE.read_bytes()
    monkeypatch.setattr(mobilenet_v3, "BASE_WEIGHT_PATH", http_server.url("/v3/"))
    with pytest.raises(ValueError, match="hash"):
        applications.MobileNetV3Small(input_shape=(224, 224, 3), include_top=False,
                                      minimalistic=True, weights="imagenet")
    assert http_server.requests[0][0] == f"/v3/{name}"
    assert not (keras_home / "models" / name).exists()


@pytest.mark.parametrize("fn,kwargs,file_name,url", [
    ("ResNet50", {}, "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
     "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
     "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    ("VGG16", {"include_top": False}, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
     "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
     "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    ("MobileNetV2", {"alpha": 0.35, "input_shape": (96, 96, 3)},
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5",
     "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"),
    ("EfficientNetB0", {"include_top": False}, "efficientnetb0_notop.h5",
     "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"),
    ("NASNetMobile", {}, "nasnet_mobile.h5",
     "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/NASNet-mobile.h5"),
])
def test_imagenet_resolves_keras_file_names(fn, kwargs, file_name, url, monkeypatch):
    """Keras's published names and URLs (the download itself is replaced by a recorder)."""
    calls = []

    def fake_get_file(fname, origin, cache_subdir, file_hash=None):
        calls.append((fname, origin, cache_subdir))
        raise RuntimeError("stop before loading")

    monkeypatch.setattr("lamina.utils.get_file", fake_get_file)
    with pytest.raises(RuntimeError, match="stop before loading"):
        getattr(applications, fn)(weights="imagenet", **kwargs)
    assert calls == [(file_name, url, "models")]


def test_weights_argument_errors_name_the_value():
    with pytest.raises(ValueError, match="Received: weights=no_such_file.h5"):
        applications.ResNet50(weights="no_such_file.h5")
    with pytest.raises(ValueError, match="Received classes=10"):
        applications.VGG16(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="Received: input_shape=\\(16, 16, 3\\)"):
        applications.ResNet50(weights=None, input_shape=(16, 16, 3), include_top=False)
    with pytest.raises(ValueError, match="Received alpha=0.3"):
        applications.MobileNet(weights="imagenet", alpha=0.3)
    with pytest.raises(ValueError, match="classifier_activation=relu"):
        applications.ResNet50(weights="imagenet", classifier_activation="relu")


@pytest.mark.slow
def test_legacy_h5_loads_by_keras_layer_order(tmp_path):
    """A weights-only file written in Keras's layout from the fixture's Keras layer
    list (names, order and shapes recorded by real Keras) loads into NASNetMobile, whose
    many parallel branches order layers differently than a depth-first walk."""
    entry = json.loads((FIXTURES / "param_counts.json").read_text())["models"][
        "NASNetMobile/default"]
    rng = np.random.default_rng(0)
    expected = {}
    path = tmp_path / "nasnet.h5"
    with h5py.File(path, "w") as f:
        names = [line.split()[0] for line in entry["layers"]]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for line in entry["layers"]:
            parts = line.split()
            group = f.create_group(parts[0])
            shapes = [tuple(int(d) for d in s.split("x") if d) for s in
                      (parts[2].split(",") if len(parts) > 2 else [])]
            weight_names = [f"{parts[0]}/w{k}" for k in range(len(shapes))]
            group.attrs["weight_names"] = [n.encode() for n in weight_names]
            values = [rng.standard_normal(s).astype("float32") for s in shapes]
            for n, v in zip(weight_names, values):
                group.create_dataset(n, data=v)
            expected[parts[0]] = values
    lamina.backend.clear_session()
    model = applications.NASNetMobile(weights=str(path))
    for layer in model.layers:
        got = [np.asarray(w.data) for w in list(layer.trainable_weights)
               + list(layer.non_trainable_weights)]
        assert len(got) == len(expected[layer.name])
        for a, b in zip(got, expected[layer.name]):
            np.testing.assert_array_equal(a, b)


def test_keras_layer_order_differs_from_a_depth_first_walk():
    lamina.backend.clear_session()
    model = applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    names = [la.name for la in _common.keras_layer_order(model)]
    # Keras lists the second conv of a block before the projection shortcut.
    assert names.index("conv2_block1_1_conv") < names.index("conv2_block1_0_conv")
    assert sorted(names) == sorted(la.name for la in model.layers)


def test_saved_application_round_trips(tmp_path):
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    lamina.backend.clear_session()
    model = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                     classes=10)
    model.save(tmp_path / "m.keras")
    loaded = lamina.saving.load_model(tmp_path / "m.keras")
    assert loaded.name == model.name
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    # MobileNetV3 has op nodes (x + 3.0 in hard_sigmoid): its weights still round trip.
    small = applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10)
    small.save_weights(tmp_path / "v3.weights.h5")
    again = applications.MobileNetV3Small(input_shape=(32, 32, 3), classes=10,
                                          weights=str(tmp_path / "v3.weights.h5"))
    np.testing.assert_allclose(again.predict(x, verbose=0), small.predict(x, verbose=0),
                               rtol=1e-6)
