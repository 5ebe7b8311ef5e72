"""``preprocess_input`` and ``decode_predictions`` against Keras 3.15.1's outputs
(``tests/fixtures/applications/make_keras_outputs.py``)."""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pytest

from lamina import applications
from lamina.applications import imagenet_utils
from lamina.backend.tensor import Tensor

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
PRE = np.load(FIXTURES / "applications" / "preprocess_input.npz")
DECODE = json.loads((FIXTURES / "applications" / "decode_predictions.json").read_text())
CASES = [(m, f, d) for m in ("caffe", "tf", "torch")
         for f in ("channels_last", "channels_first") for d in ("3d", "4d")]


def _input(fmt, dims):
    x = PRE["x3"] if dims == "3d" else PRE["x4"]
    if fmt == "channels_first":
        x = np.moveaxis(x, -1, 0 if x.ndim == 3 else 1)
    return np.array(x, dtype="float32")


@pytest.mark.parametrize("mode,fmt,dims", CASES)
def test_preprocess_numpy_matches_keras(mode, fmt, dims):
    x = _input(fmt, dims)
    out = imagenet_utils.preprocess_input(x, data_format=fmt, mode=mode)
    np.testing.assert_allclose(out, PRE[f"{mode}_{fmt}_{dims}_numpy"], rtol=1e-6, atol=1e-5)
    # Keras writes over a float input: the caller's array holds the result too.
    if mode != "caffe":
        np.testing.assert_allclose(x, out)


@pytest.mark.parametrize("mode,fmt,dims", CASES)
def test_preprocess_tensor_matches_keras(mode, fmt, dims):
    x = Tensor(_input(fmt, dims))
    out = imagenet_utils.preprocess_input(x, data_format=fmt, mode=mode)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, PRE[f"{mode}_{fmt}_{dims}_tensor"], rtol=1e-6,
                               atol=1e-5)


def test_preprocess_integer_input_is_cast_to_float():
    x = np.full((1, 2, 2, 3), 255, dtype="uint8")
    out = imagenet_utils.preprocess_input(x, mode="tf")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0)


@pytest.mark.parametrize("module,mode", [
    ("vgg16", "caffe"), ("vgg19", "caffe"), ("resnet", "caffe"), ("resnet50", "caffe"),
    ("resnet_v2", "tf"), ("inception_v3", "tf"), ("inception_resnet_v2", "tf"),
    ("xception", "tf"), ("mobilenet", "tf"), ("mobilenet_v2", "tf"), ("nasnet", "tf"),
    ("densenet", "torch")])
def test_family_preprocess_modes(module, mode):
    x = _input("channels_last", "4d")
    out = getattr(applications, module).preprocess_input(x.copy())
    np.testing.assert_allclose(out, PRE[f"{mode}_channels_last_4d_numpy"], rtol=1e-6,
                               atol=1e-5)


@pytest.mark.parametrize("module", ["mobilenet_v3", "efficientnet", "efficientnet_v2",
                                    "convnext"])
def test_in_model_preprocessing_families_pass_input_through(module):
    x = _input("channels_last", "4d")
    assert getattr(applications, module).preprocess_input(x) is x


def test_preprocess_rejects_bad_mode_and_format():
    x = _input("channels_last", "4d")
    with pytest.raises(ValueError, match="Received: mode=bgr"):
        imagenet_utils.preprocess_input(x, mode="bgr")
    with pytest.raises(ValueError, match="Received: data_format=nhwc"):
        imagenet_utils.preprocess_input(x, data_format="nhwc")


def _class_index_bytes():
    index = {str(i): [f"n{10000000 + 7 * i:08d}", f"label_{i}"] for i in range(1000)}
    return json.dumps(index).encode()


@pytest.fixture
def class_index(monkeypatch, keras_home):
    """A synthetic class index (same as the fixture script's) in the private cache;
    the expected hash is this file's, since the real file cannot be downloaded here."""
    data = _class_index_bytes()
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_HASH", hashlib.md5(data).hexdigest())  # noqa: S324
    return data


def test_decode_reads_the_cached_class_index(class_index, keras_home, monkeypatch):
    path = keras_home / "models" / "imagenet_class_index.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(class_index)
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_PATH", "http://127.0.0.1:9/unreachable")
    preds = np.asarray(DECODE["preds"], dtype="float32")
    for top, key in ((5, "top5"), (3, "top3")):
        got = applications.resnet50.decode_predictions(preds, top=top)
        expected = DECODE[key]
        assert [[(a, b) for a, b, _ in row] for row in got] == \
            [[(a, b) for a, b, _ in row] for row in expected]
        np.testing.assert_allclose([[c for *_, c in row] for row in got],
                                   [[c for *_, c in row] for row in expected], rtol=1e-6)
    assert isinstance(got[0][0], tuple)


def test_decode_downloads_the_class_index_once(class_index, keras_home, http_server,
                                               monkeypatch):
    http_server.files["/data/imagenet_class_index.json"] = class_index
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_PATH",
                        http_server.url("/data/imagenet_class_index.json"))
    preds = np.asarray(DECODE["preds"], dtype="float32")
    got = imagenet_utils.decode_predictions(Tensor(preds), top=5)
    assert [[(a, b) for a, b, _ in row] for row in got] == \
        [[(a, b) for a, b, _ in row] for row in DECODE["top5"]]
    assert (keras_home / "models" / "imagenet_class_index.json").read_bytes() == class_index
    imagenet_utils.decode_predictions(preds)
    assert len(http_server.requests) == 1


@pytest.mark.parametrize("shape", [(2, 10), (1000,), (2, 1000, 1)])
def test_decode_rejects_wrong_shapes_with_keras_message(shape):
    with pytest.raises(ValueError) as info:
        imagenet_utils.decode_predictions(np.zeros(shape, "float32"))
    assert str(info.value) == DECODE["errors"][str(list(shape))]


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocess_inside_a_functional_model(mode):
    import lamina

    inputs = lamina.Input((4, 5, 3))
    model = lamina.Model(inputs, imagenet_utils.preprocess_input(inputs, mode=mode))
    x = _input("channels_last", "4d")
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               PRE[f"{mode}_channels_last_4d_tensor"], rtol=1e-6, atol=1e-5)
