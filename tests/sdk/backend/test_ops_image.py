"""Keras's ``ops.image`` names: forward against numpy, gradient against central
differences (``lamina.testing.check_gradients``)."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.backend import Tensor
from lamina.ops import image
from lamina.testing import check_gradients

RNG = np.random.default_rng(5)
IMG = RNG.uniform(0, 1, (2, 5, 6, 3))


def case(name, fn, ref, *inputs, note=""):
    return pytest.param(fn, ref, inputs, id=f"{name}[{note}]" if note else name)


HSV = np.stack([RNG.uniform(0.05, 0.95, (2, 4, 4)), RNG.uniform(0.1, 0.9, (2, 4, 4)),
                RNG.uniform(0.1, 0.9, (2, 4, 4))], axis=-1)


def np_rgb_to_hsv(x):
    import colorsys

    return np.apply_along_axis(lambda p: colorsys.rgb_to_hsv(*p), -1, x)


def np_hsv_to_rgb(x):
    import colorsys

    return np.apply_along_axis(lambda p: colorsys.hsv_to_rgb(*p), -1, x)


def np_sobel(x):
    from scipy.ndimage import correlate

    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    out = [np.stack([np.stack([correlate(x[b, :, :, c], k, mode="constant")
                               for c in range(x.shape[-1])], -1) for b in range(x.shape[0])])
           for k in (sx.T, sx)]
    return np.stack(out, -1)


CASES = [
    case("sobel_edges", image.sobel_edges, np_sobel, IMG),
    case("sobel_edges", lambda x: image.sobel_edges(x, data_format="channels_first"),
         lambda x: np_sobel(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2, 4),
         IMG.transpose(0, 3, 1, 2), note="channels_first"),
    case("rgb_to_hsv", image.rgb_to_hsv, np_rgb_to_hsv, IMG),
    case("hsv_to_rgb", image.hsv_to_rgb, np_hsv_to_rgb, HSV),
    case("hsv_to_rgb", lambda x: image.hsv_to_rgb(x, data_format="channels_first"),
         lambda x: np_hsv_to_rgb(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
         HSV.transpose(0, 3, 1, 2), note="channels_first"),
    case("rgb_to_grayscale", image.rgb_to_grayscale,
         lambda x: (x @ [0.2989, 0.5870, 0.1140])[..., None], IMG),
    case("rgb_to_grayscale", lambda x: image.rgb_to_grayscale(x, data_format="channels_first"),
         lambda x: np.einsum("bchw,c->bhw", x, [0.2989, 0.5870, 0.1140])[:, None],
         IMG.transpose(0, 3, 1, 2), note="channels_first"),
    case("pad_images", lambda x: image.pad_images(x, 1, 2, target_height=8, target_width=9),
         lambda x: np.pad(x, ((0, 0), (1, 2), (2, 1), (0, 0))), IMG),
    case("pad_images", lambda x: image.pad_images(x[0], bottom_padding=1, left_padding=0,
                                                  right_padding=2, target_height=7),
         lambda x: np.pad(x[0], ((1, 1), (0, 2), (0, 0))), IMG, note="unbatched"),
    case("crop_images", lambda x: image.crop_images(x, 1, 2, target_height=3, target_width=2),
         lambda x: x[:, 1:4, 2:4], IMG),
    case("crop_images", lambda x: image.crop_images(
        x, bottom_cropping=1, right_cropping=2, target_height=2, target_width=3,
        data_format="channels_first"), lambda x: x[:, :, 2:4, 1:4],
         IMG.transpose(0, 3, 1, 2), note="channels_first"),
]


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_forward_matches_numpy(fn, ref, inputs):
    out = fn(*[Tensor(np.asarray(a, np.float32)) for a in inputs])
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_gradient_matches_central_differences(fn, ref, inputs):
    assert check_gradients(fn, list(inputs)) <= 1e-6


def test_errors_echo_the_arguments():
    with pytest.raises(ValueError, match="Must specify exactly two of top_padding"):
        image.pad_images(IMG, 1, 1, 1, 1, target_height=9, target_width=None)
    with pytest.raises(ValueError, match="Received: data_format='nchw'"):
        image.rgb_to_grayscale(IMG, data_format="nchw")
    with pytest.raises(ValueError, match="images.shape"):
        image.rgb_to_grayscale(IMG[..., :2])
