"""Keras's ``ops.image`` names: forward against numpy, gradient against central
differences (``lamina.testing.check_gradients``)."""

from __future__ import annotations

import json
import pathlib

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


# -- resampling, warps and filters: Keras 3.15.1 (JAX backend) as the oracle ----------
# tests/fixtures/ops_image/make_fixtures.py records the cases and Keras's outputs.
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "ops_image"
KERAS_CASES = json.loads((FIXTURES / "cases.json").read_text())
KERAS_ARRAYS = np.load(FIXTURES / "ops_image.npz")


@pytest.mark.parametrize("row", KERAS_CASES, ids=[c["id"] for c in KERAS_CASES])
def test_matches_keras(row):
    inputs = [KERAS_ARRAYS[f"{row['id']}/in{k}"] for k in range(row["n_inputs"])]
    expected = KERAS_ARRAYS[f"{row['id']}/out"]
    got = getattr(image, row["fn"])(*inputs, **row["kwargs"])
    assert got.dtype == expected.dtype.name and got.shape == expected.shape
    # Integer results round a float32 value: one ulp either side of a half flips it.
    atol = 1 if expected.dtype.kind in "iu" else 1e-5
    np.testing.assert_allclose(got.data.astype(np.float64), expected, rtol=0, atol=atol)


def test_area_is_the_box_average():
    x = RNG.uniform(0, 1, (2, 6, 9, 3)).astype("float32")
    blocks = x.astype(np.float64).reshape(2, 3, 2, 3, 3, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(image.resize(x, (3, 3), interpolation="area").data, blocks,
                               rtol=1e-6)


PATCH = RNG.uniform(0, 1, (1, 5, 6, 2))
COORDS = np.stack([RNG.uniform(-1.3, 5.2, (3, 4)), RNG.uniform(-1.4, 6.3, (3, 4))])
AFFINE = np.array([[0.9, -0.3, 0.7, 0.25, 1.1, -0.4, 0.0, 0.0]])
GRAD_CASES = [
    pytest.param(lambda x: image.resize(x, (7, 4)), [PATCH], id="resize[bilinear]"),
    pytest.param(lambda x: image.resize(x, (3, 8), interpolation="nearest"), [PATCH],
                 id="resize[nearest]"),
    pytest.param(lambda x: image.resize(x, (3, 4), interpolation="bicubic", antialias=True),
                 [PATCH], id="resize[bicubic_antialias]"),
    pytest.param(lambda x: image.resize(x, (4, 4), pad_to_aspect_ratio=True, fill_value=0.5),
                 [PATCH], id="resize[pad_to_aspect_ratio]"),
    pytest.param(lambda x: image.affine_transform(x, AFFINE), [PATCH],
                 id="affine_transform[bilinear]"),
    pytest.param(lambda x: image.affine_transform(x, AFFINE, fill_mode="reflect"), [PATCH],
                 id="affine_transform[reflect]"),
    pytest.param(lambda x: image.extract_patches(x, 2), [PATCH], id="extract_patches"),
    pytest.param(lambda x: image.extract_patches_3d(x, 2, strides=1), [PATCH[..., None]],
                 id="extract_patches_3d"),
    pytest.param(lambda x: image.gaussian_blur(x, (3, 5), (0.8, 1.2)), [PATCH],
                 id="gaussian_blur"),
    pytest.param(lambda x, c: image.map_coordinates(x, c, 1), [PATCH[0, ..., 0], COORDS],
                 id="map_coordinates[order1]"),
    pytest.param(lambda x, c: image.map_coordinates(x, c, 1, fill_mode="mirror"),
                 [PATCH[0, ..., 0], COORDS], id="map_coordinates[mirror]"),
    pytest.param(lambda x: image.scale_and_translate(x, (1, 3, 9, 2), [0.7, 1.6], [0.2, -0.4],
                                                     (1, 2), "lanczos3"), [PATCH],
                 id="scale_and_translate"),
    pytest.param(lambda x: image.perspective_transform(
        x, [[0, 0], [0, 5], [6, 0], [6, 5]], [[0.5, 0.2], [0, 4.5], [5.5, 0.3], [6.2, 5]]),
        [PATCH], id="perspective_transform"),
    pytest.param(lambda a, b: image.ssim(a, b, filter_size=3), [PATCH, PATCH[:, ::-1]],
                 id="ssim"),
]


@pytest.mark.parametrize("fn,inputs", GRAD_CASES)
def test_new_ops_gradients_match_central_differences(fn, inputs):
    assert check_gradients(fn, inputs) <= 1e-6


def test_new_ops_run_on_symbolic_tensors_in_a_model():
    import lamina

    x = lamina.Input(shape=(5, 6, 2))
    resized = image.resize(x, (8, 4), interpolation="bicubic")
    blurred = image.gaussian_blur(resized, (3, 3), (1.0, 1.0))
    warped = image.affine_transform(blurred, AFFINE[0])
    persp = image.perspective_transform(x, [[0, 0], [0, 5], [6, 0], [6, 5]],
                                        [[1, 0], [0, 5], [6, 1], [6, 5]])
    patches = image.extract_patches(warped, 2)
    quality = image.ssim(x, persp, filter_size=3)
    model = lamina.Model(x, [patches, quality])
    assert tuple(patches.shape) == (None, 4, 2, 8) and tuple(quality.shape) == (None,)
    data = RNG.uniform(0, 1, (3, 5, 6, 2)).astype("float32")
    got_patches, got_quality = model.predict(data, verbose=0)
    eager = image.extract_patches(image.affine_transform(image.gaussian_blur(
        image.resize(data, (8, 4), interpolation="bicubic"), (3, 3), (1.0, 1.0)),
        AFFINE[0]), 2)
    np.testing.assert_allclose(got_patches, eager.data, rtol=1e-6, atol=1e-6)
    assert got_quality.shape == (3,) and np.all(got_quality < 1.0)


def test_elastic_transform_is_seeded_and_alpha_zero_is_identity():
    x = RNG.uniform(0, 1, (2, 9, 10, 3)).astype("float32")
    a = image.elastic_transform(x, seed=3)
    np.testing.assert_array_equal(a.data, image.elastic_transform(x, seed=3).data)
    assert not np.allclose(a.data, x)
    assert not np.array_equal(a.data, image.elastic_transform(x, seed=4).data)
    np.testing.assert_allclose(image.elastic_transform(x, alpha=0.0, seed=3).data, x,
                               rtol=1e-6)
    first = image.elastic_transform(x.transpose(0, 3, 1, 2), seed=3, interpolation="nearest",
                                    data_format="channels_first")
    assert first.shape == (2, 3, 9, 10)
    assert set(np.unique(first.data)) <= set(np.unique(x))


@pytest.mark.parametrize("call,match", [
    (lambda: image.resize(IMG, (4, 4), interpolation="cubic"),
     "Received: interpolation=cubic"),
    (lambda: image.resize(IMG, (-2, 4)), r"Received: size=\(-2, 4\)"),
    (lambda: image.resize(IMG, (2, 2, 2)), r"Received: size=\(2, 2, 2\)"),
    (lambda: image.resize(IMG[0, 0], (2, 2)), r"images.shape=\(6, 3\)"),
    (lambda: image.resize(IMG, (2, 2), fill_mode="reflect"), "Received: fill_mode=reflect"),
    (lambda: image.resize(IMG, (2, 2), crop_to_aspect_ratio=True, pad_to_aspect_ratio=True),
     "Only one of `pad_to_aspect_ratio`"),
    (lambda: image.affine_transform(IMG, AFFINE, interpolation="bicubic"),
     "Received: interpolation=bicubic"),
    (lambda: image.affine_transform(IMG, AFFINE, fill_mode="edge"),
     "Received: fill_mode=edge"),
    (lambda: image.affine_transform(IMG, AFFINE[None]), r"transform.shape=\(1, 1, 8\)"),
    (lambda: image.map_coordinates(IMG[0, ..., 0], COORDS, order=3), "Received: order=3"),
    (lambda: image.map_coordinates(IMG, COORDS, order=1), "leading dim of 2"),
    (lambda: image.map_coordinates(IMG[0, ..., 0], COORDS, 1, fill_mode="x"),
     "Received: fill_mode=x"),
    (lambda: image.extract_patches(IMG, (2, 2, 2, 2)), "Received: size=\\(2, 2, 2, 2\\)"),
    (lambda: image.extract_patches_3d(IMG[..., None], 2, strides=(1, 1)),
     r"Got: \(1, 1\)"),
    (lambda: image.perspective_transform(IMG, np.zeros((3, 2)), np.zeros((3, 2))),
     r"Received shape: \(3, 2\)"),
    (lambda: image.scale_and_translate(IMG, (2, 4, 4, 3), [1, 1], [0, 0], (1, 2), "nearest"),
     "Received: method=nearest"),
    (lambda: image.ssim(IMG[0, 0], IMG[0, 0]), r"image1.shape=\(6, 3\)"),
    (lambda: image.gaussian_blur(IMG[0, 0]), r"images.shape=\(6, 3\)"),
])
def test_new_ops_errors_echo_the_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_extract_patches_rejects_a_non_tuple_size():
    with pytest.raises(TypeError, match="Received: size=2.5 of type float"):
        image.extract_patches(IMG, 2.5)
