"""``load_img``, ``img_to_array``, ``array_to_img``, ``save_img``, ``smart_resize``
against Keras 3.15.1 on the same files (tests/fixtures/datasets/make_util_fixtures.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from lamina import preprocessing, utils
from lamina.utils import image_utils

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"
EXPECTED = json.loads((FIXTURES / "util_expected.json").read_text())["image_utils"]
FIRST = sorted(p for p in (FIXTURES / "tree" / "images").rglob("*")
               if p.suffix.lower() in (".png", ".bmp") and ".hidden" not in p.parts)[0]


@pytest.mark.parametrize("mode", ["rgb", "grayscale", "rgba"])
def test_load_img_color_modes_match_keras(mode):
    x = utils.img_to_array(utils.load_img(FIRST, color_mode=mode))
    np.testing.assert_array_equal(x, EXPECTED[f"load_{mode}"])
    assert x.dtype == np.float32


@pytest.mark.parametrize("interp", ["nearest", "bilinear", "bicubic", "lanczos", "box",
                                    "hamming"])
def test_load_img_resize_matches_keras(interp):
    img = utils.load_img(str(FIRST), target_size=(3, 4), interpolation=interp)
    np.testing.assert_array_equal(utils.img_to_array(img), EXPECTED[f"resize_{interp}"])


def test_keep_aspect_ratio_and_channels_first_match_keras():
    img = utils.load_img(FIRST, target_size=(4, 4), keep_aspect_ratio=True)
    np.testing.assert_array_equal(utils.img_to_array(img), EXPECTED["keep_aspect"])
    x = utils.img_to_array(utils.load_img(FIRST), data_format="channels_first")
    np.testing.assert_array_equal(x, EXPECTED["channels_first"])


def test_array_to_img_matches_keras():
    arr = np.linspace(-3, 5, 2 * 3 * 3).reshape(2, 3, 3)
    np.testing.assert_array_equal(np.asarray(utils.array_to_img(arr)),
                                  EXPECTED["array_to_img_scaled"])
    np.testing.assert_array_equal(np.asarray(utils.array_to_img(arr * 40 + 130, scale=False)),
                                  EXPECTED["array_to_img_raw"])
    gray = utils.array_to_img(np.arange(6.0).reshape(2, 3, 1) * 100, scale=False)
    assert [gray.mode, np.asarray(gray).tolist()] == EXPECTED["array_to_img_gray_I"]


def test_save_img_roundtrip_matches_keras(tmp_path):
    arr = np.linspace(-3, 5, 2 * 3 * 3).reshape(2, 3, 3)
    buf = io.BytesIO()
    utils.save_img(buf, arr, file_format="png")
    back = np.asarray(utils.load_img(io.BytesIO(buf.getvalue())))
    np.testing.assert_array_equal(back, EXPECTED["save_png_roundtrip"])
    utils.save_img(tmp_path / "a.jpg", np.zeros((4, 4, 3)))
    assert utils.load_img(tmp_path / "a.jpg").format == "JPEG"
    with pytest.warns(UserWarning, match="JPEG format does not support RGBA"):
        utils.save_img(tmp_path / "b.jpg", np.ones((4, 4, 4)))


def test_smart_resize_matches_keras():
    batch = np.arange(2 * 7 * 10 * 3, dtype="float32").reshape(2, 7, 10, 3)
    np.testing.assert_allclose(preprocessing.image.smart_resize(batch, (4, 4)),
                               EXPECTED["smart_resize"], atol=1e-3)
    np.testing.assert_allclose(
        preprocessing.image.smart_resize(batch[0].transpose(2, 0, 1), (5, 3),
                                         interpolation="nearest",
                                         data_format="channels_first"),
        EXPECTED["smart_resize_cf"], atol=1e-3)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="color_mode='cmyk'"):
        utils.load_img(FIRST, color_mode="cmyk")
    with pytest.raises(ValueError, match="Invalid interpolation method cubic"):
        utils.load_img(FIRST, target_size=(2, 2), interpolation="cubic")
    with pytest.raises(TypeError, match="path should be path-like"):
        utils.load_img(3)
    with pytest.raises(ValueError, match="rank 3"):
        utils.array_to_img(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Unsupported channel number: 2"):
        utils.array_to_img(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="Unsupported image shape"):
        utils.img_to_array(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="data_format=channels_middle"):
        utils.img_to_array(np.zeros((2, 2)), data_format="channels_middle")
    with pytest.raises(ValueError, match="tuple of 2 integers"):
        image_utils.smart_resize(np.zeros((4, 4, 3)), (2,))


def test_missing_pillow_is_named(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install Pillow"):
        utils.load_img(FIRST)
