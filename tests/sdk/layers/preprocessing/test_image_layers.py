"""Image preprocessing layers: configs and outputs against Keras 3.15.1 fixtures
(tests/fixtures/ops_image/make_layer_fixtures.py), run_layer_test for each layer, and
the properties of the random ones."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "ops_image"
CONFIGS = json.loads((FIXTURES / "layer_configs.json").read_text())
CASES = json.loads((FIXTURES / "layer_cases.json").read_text())
ARRAYS = np.load(FIXTURES / "layers.npz")
RNG = np.random.default_rng(11)
X = RNG.uniform(0, 255, (3, 8, 9, 3)).astype("float32")


@pytest.mark.parametrize("row", CONFIGS, ids=[f"{c['layer']}-{i}" for i, c in
                                             enumerate(CONFIGS)])
def test_config_matches_keras(row):
    config = getattr(layers, row["layer"])(**row["kwargs"]).get_config()
    for key in ("name", "dtype", "trainable"):
        config.pop(key)
    assert json.loads(json.dumps(config)) == row["config"]


FIXED = [c for c in CASES if not c["id"].endswith("_either_sign")]


@pytest.mark.parametrize("row", FIXED, ids=[c["id"] for c in FIXED])
def test_output_matches_keras(row):
    x, expected = ARRAYS[f"{row['id']}/in"], ARRAYS[f"{row['id']}/out"]
    got = getattr(layers, row["layer"])(**row["kwargs"])(x)
    assert got.shape == expected.shape and got.dtype == expected.dtype.name
    scale = max(1.0, float(np.abs(expected).max()))
    # Integer outputs round a float32 value: one ulp either side of a half flips it.
    atol = 1 if expected.dtype.kind in "iu" else 1e-5 * scale
    np.testing.assert_allclose(got.numpy().astype(np.float64), expected, rtol=0, atol=atol)


LAYER_TESTS = [
    ("Resizing", {"height": 4, "width": 5}, (2, 8, 9, 3), (2, 4, 5, 3), True),
    ("Resizing", {"height": 6, "width": 3, "interpolation": "bicubic",
                  "data_format": "channels_first"}, (2, 3, 8, 9), (2, 3, 6, 3), True),
    ("CenterCrop", {"height": 4, "width": 5}, (2, 8, 9, 3), (2, 4, 5, 3), True),
    ("RandomCrop", {"height": 4, "width": 5, "seed": 1}, (2, 8, 9, 3), (2, 4, 5, 3), True),
    ("RandomFlip", {"seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomRotation", {"factor": 0.2, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomZoom", {"height_factor": 0.2, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": 0.1, "seed": 1},
     (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomShear", {"x_factor": 0.2, "y_factor": 0.1, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3),
     True),
    ("RandomContrast", {"factor": 0.3, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomBrightness", {"factor": 0.3, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomColorDegeneration", {"factor": 0.3, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomGrayscale", {"factor": 0.5, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomHue", {"factor": 0.3, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomSaturation", {"factor": 0.3, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomSharpness", {"factor": 0.3, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomInvert", {"seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("RandomPosterization", {"factor": 4, "seed": 1}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    ("Solarization", {"addition_factor": 0.3, "threshold_factor": 0.5, "seed": 1}, (2, 8, 9, 3),
     (2, 8, 9, 3), True),
    # AutoContrast is always on (min/max: not differentiable at ties); Equalization is
    # a lookup table.
    ("AutoContrast", {}, (2, 8, 9, 3), (2, 8, 9, 3), False),
    ("Equalization", {}, (2, 8, 9, 3), (2, 8, 9, 3), True),
    # CLAHE is a lookup table applied at inference too: no gradient to check.
    ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (2, 3)},
     (2, 8, 9, 3), (2, 8, 9, 3), False),
]


@pytest.mark.parametrize("name,kwargs,shape,out_shape,gradient", LAYER_TESTS,
                         ids=[t[0] for t in LAYER_TESTS])
def test_run_layer_test(name, kwargs, shape, out_shape, gradient):
    run_layer_test(getattr(layers, name), init_kwargs=kwargs,
                   input_data=np.random.default_rng(0).uniform(0, 1, shape).astype("float32"),
                   expected_output_shape=out_shape, expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0, run_gradient_check=gradient,
                   # Keras's RandomCrop passes images through uncropped outside training,
                   # so predict's and fit's output shapes differ: no fit step for it.
                   run_training_check=name != "RandomCrop")


RANDOM_LAYERS = [(n, k) for n, k, _, _, _ in LAYER_TESTS
                 if n.startswith("Random") or n == "Solarization"]


@pytest.mark.parametrize("name,kwargs", RANDOM_LAYERS, ids=[n for n, _ in RANDOM_LAYERS])
def test_random_layers_are_seeded_and_identity_at_inference(name, kwargs):
    a = getattr(layers, name)(**kwargs)
    b = getattr(layers, name)(**kwargs)
    first = a(X).numpy()
    np.testing.assert_array_equal(first, b(X).numpy())
    assert not np.allclose(first, a(X).numpy()) or name == "RandomPosterization"
    np.testing.assert_array_equal(a(X, training=False).numpy(), X)
    model = lamina.Sequential([lamina.Input((8, 9, 3)), getattr(layers, name)(**kwargs)])
    np.testing.assert_array_equal(model.predict(X, verbose=0), X)


def test_random_flip_gives_the_image_or_its_mirror():
    for mode, axes in (("horizontal", (1,)), ("vertical", (0,)),
                       ("horizontal_and_vertical", (0, 1))):
        out = layers.RandomFlip(mode, seed=4)(X).numpy()
        kinds = [np.array_equal(o, x) or np.array_equal(o, np.flip(x, axes))
                 for o, x in zip(out, X)]
        assert all(kinds), mode
    many = layers.RandomFlip("horizontal", seed=0)(np.repeat(X[:1], 64, 0)).numpy()
    flipped = np.mean([not np.array_equal(o, X[0]) for o in many])
    assert 0.3 < flipped < 0.7


def test_zero_factors_are_identities():
    for layer in (layers.RandomRotation(0.0), layers.RandomZoom(0.0),
                  layers.RandomTranslation(0.0, 0.0), layers.RandomShear(),
                  layers.RandomContrast(0.0), layers.RandomBrightness(0.0)):
        np.testing.assert_allclose(layer(X).numpy(), X, atol=1e-3, err_msg=layer.name)


def test_brightness_and_contrast_stay_in_range():
    out = layers.RandomBrightness(0.5, seed=2)(X).numpy()
    assert out.min() >= 0 and out.max() <= 255
    shifts = (out - X).reshape(3, -1)
    unclipped = (out > 0) & (out < 255)
    for shift, inside in zip(shifts, unclipped.reshape(3, -1)):
        # One delta per image, within factor * (max - min).
        assert np.ptp(shift[inside]) < 1e-3 and abs(shift[inside][0]) <= 0.5 * 255
    out = layers.RandomContrast(0.5, value_range=(0, 1), seed=2)(X / 255).numpy()
    assert out.min() >= 0 and out.max() <= 1


def test_random_crop_records_a_drawn_seed_as_keras():
    seed = layers.RandomCrop(4, 5).get_config()["seed"]
    assert isinstance(seed, int) and seed > 0
    assert layers.RandomCrop(4, 5, seed=7).get_config()["seed"] == 7


def test_random_crop_windows_come_from_the_image():
    out = layers.RandomCrop(4, 5, seed=3)(X[0]).numpy()
    matches = [(i, j) for i in range(5) for j in range(5)
               if np.array_equal(X[0, i:i + 4, j:j + 5], out)]
    assert len(matches) == 1
    assert layers.RandomCrop(4, 5)(X, training=False).shape == X.shape


def test_dict_inputs_transform_images_and_masks_together():
    masks = np.repeat(np.arange(72, dtype="float32").reshape(1, 8, 9, 1), 3, 0)
    out = layers.RandomFlip("horizontal", seed=5)({"images": X, "segmentation_masks": masks,
                                                   "labels": np.eye(3)})
    for o, m, x in zip(out["images"].numpy(), out["segmentation_masks"].numpy(), X):
        assert np.array_equal(o, x) == np.array_equal(m, masks[0])
    np.testing.assert_array_equal(out["labels"], np.eye(3))


@pytest.mark.parametrize("call,match", [
    (lambda: layers.RandomFlip("diagonal"), "unknown mode argument diagonal"),
    (lambda: layers.RandomRotation(1.5), r"Received: factor=1.5"),
    (lambda: layers.RandomZoom(-1.0), r"Received: height_factor=-1.0"),
    (lambda: layers.RandomTranslation(0.1, (0.1, 0.2, 0.3)),
     r"Received: width_factor=\(0.1, 0.2, 0.3\)"),
    (lambda: layers.RandomShear(x_factor=2), "Received: x_factor=2"),
    (lambda: layers.RandomContrast(-0.2), r"Received: factor=-0.2"),
    (lambda: layers.RandomBrightness(0.2, value_range=3), "Received: value_range=3"),
    (lambda: layers.RandomGrayscale(1.2), "Received: factor=1.2"),
    (lambda: layers.Solarization(addition_factor=2), "Received: addition_factor=2"),
    (lambda: layers.Resizing(4, -5), "Received: width=-5"),
    (lambda: layers.Resizing(4, 5, interpolation="cubic"), "Received: interpolation=cubic"),
    (lambda: layers.CenterCrop(0, 5), "Received: height=0"),
    (lambda: layers.RandomFlip(data_format="nhwc"), "Received: data_format=nhwc"),
    (lambda: layers.RandomFlip()(X[0, 0]), r"Received: data.shape=\(9, 3\)"),
])
def test_errors_echo_the_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unknown_fill_mode_is_not_implemented_as_in_keras():
    with pytest.raises(NotImplementedError, match="Unknown `fill_mode` mirror"):
        layers.RandomRotation(0.1, fill_mode="mirror")


TRAINING_GRADIENTS = [
    ("RandomRotation", {"factor": (0.1, 0.1), "fill_mode": "reflect"}),
    ("RandomZoom", {"height_factor": (0.2, 0.2), "width_factor": (-0.3, -0.3),
                    "fill_mode": "constant"}),
    ("RandomTranslation", {"height_factor": (0.15, 0.15), "width_factor": (-0.2, -0.2)}),
    ("RandomContrast", {"factor": (-0.4, 0.4)}),
    ("RandomColorDegeneration", {"factor": (0.3, 0.3)}),
    ("RandomSharpness", {"factor": (0.8, 0.8)}),
    ("RandomPerspective", {"factor": (1.0, 1.0), "scale": 0.0}),
]


@pytest.mark.parametrize("name,kwargs", TRAINING_GRADIENTS, ids=[t[0] for t in TRAINING_GRADIENTS])
def test_training_path_is_differentiable_in_the_images(name, kwargs):
    from lamina.testing import check_gradients

    # One-point factor ranges make the training transform deterministic, so central
    # differences see the same warp on every call.
    layer = getattr(layers, name)(**kwargs, dtype="float64")
    x = np.random.default_rng(1).uniform(0.2, 0.8, (1, 4, 5, 3))
    assert check_gradients(lambda t: layer(t, training=True), [x]) <= 1e-6


def _either_sign_candidates(case_id, x):
    from lamina.ops import image

    if case_id == "hue_either_sign":
        hsv = image.rgb_to_hsv(x / 255.0).numpy()
        out = []
        for shift in (0.25, -0.25):
            h = hsv[..., 0] + shift
            h = np.where(h > 1, h - 1, np.where(h < 0, h + 1, h))
            rgb = image.hsv_to_rgb(np.stack([h, hsv[..., 1], hsv[..., 2]], -1)).numpy()
            out.append(np.clip(rgb, 0, 1) * 255.0)
        return out
    return [image.affine_transform(x, [1, 0.3 * s, 0, 0.2 * s, 1, 0, 0, 0],
                                   fill_mode="reflect").numpy() for s in (1, -1)]


@pytest.mark.parametrize("case_id,name,kwargs", [
    ("hue_either_sign", "RandomHue", {"factor": (0.5, 0.5)}),
    ("shear_either_sign", "RandomShear", {"x_factor": (0.3, 0.3), "y_factor": (0.2, 0.2)}),
])
def test_random_sign_layers_match_keras_for_either_sign(case_id, name, kwargs):
    x, expected = ARRAYS[f"{case_id}/in"], ARRAYS[f"{case_id}/out"]
    candidates = _either_sign_candidates(case_id, x)
    ours = getattr(layers, name)(**kwargs, seed=3)(x).numpy()
    for i in range(len(x)):
        for got in (expected[i], ours[i]):
            assert min(np.abs(got - c[i]).max() for c in candidates) < 1e-3
