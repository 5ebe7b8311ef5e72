"""Mixing, random-warp and composite image layers: run_layer_test for each and the
properties of their outputs (configs are checked against Keras in test_image_layers)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "ops_image"

RNG = np.random.default_rng(3)
X = RNG.uniform(0, 255, (4, 8, 9, 3)).astype("float32")

LAYER_TESTS = [
    ("MixUp", {"seed": 1}),
    ("CutMix", {"seed": 1}),
    ("RandomErasing", {"seed": 1}),
    ("RandomGaussianBlur", {"seed": 1}),
    ("RandomElasticTransform", {"seed": 1}),
    ("RandomPerspective", {"seed": 1}),
    ("RandomColorJitter", {"brightness_factor": 0.2, "contrast_factor": 0.2, "seed": 1}),
    ("RandAugment", {"seed": 1}),
    ("AugMix", {"seed": 1}),
    ("MaxNumBoundingBoxes", {"max_number": 3}),
]


@pytest.mark.parametrize("name,kwargs", LAYER_TESTS, ids=[t[0] for t in LAYER_TESTS])
def test_run_layer_test(name, kwargs):
    run_layer_test(getattr(layers, name), init_kwargs=kwargs,
                   input_data=np.random.default_rng(0).uniform(0, 1, (2, 8, 9, 3)).astype(
                       "float32"),
                   expected_output_shape=(2, 8, 9, 3), expected_num_trainable_weights=0)


@pytest.mark.parametrize("name,kwargs", LAYER_TESTS[:-1], ids=[t[0] for t in LAYER_TESTS[:-1]])
def test_seeded_in_training_and_identity_at_inference(name, kwargs):
    a, b = getattr(layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    np.testing.assert_array_equal(a(X).numpy(), b(X).numpy())
    assert not np.allclose(a(X).numpy(), X)
    np.testing.assert_array_equal(a(X, training=False).numpy(), X)


def _labels_and_images(layer):
    out = layer({"images": X, "labels": np.eye(4, dtype="float32")})
    return out["images"].numpy(), out["labels"].numpy()


def test_mix_up_blends_pairs_with_the_label_weights():
    images, labels = _labels_and_images(layers.MixUp(alpha=0.5, seed=4))
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(4):
        w = labels[i, i] if np.count_nonzero(labels[i] > 1e-7) > 1 else 1.0
        j = int(np.argmax(labels[i] - np.eye(4)[i] * labels[i, i])) if w < 1 else i
        np.testing.assert_allclose(images[i], w * X[i] + (1 - w) * X[j], rtol=1e-4, atol=1e-3)


def test_cut_mix_pastes_a_box_of_another_image():
    images, labels = _labels_and_images(layers.CutMix(seed=6))
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(4):
        changed = np.any(images[i] != X[i], axis=-1)
        if changed.any():
            rows, cols = np.nonzero(changed)
            source = int(np.argmax(labels[i] - np.eye(4)[i] * labels[i, i]))
            box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
            np.testing.assert_array_equal(images[i][box], X[source][box])


def test_random_erasing_fills_one_rectangle():
    out = layers.RandomErasing(factor=(1.0, 1.0), scale=(0.2, 0.3), fill_value=0.0,
                               seed=2)(X).numpy()
    for o, x in zip(out, X):
        erased = np.all(o == 0, axis=-1)
        assert erased.any()
        rows, cols = np.nonzero(erased)
        assert erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        np.testing.assert_array_equal(o[~erased], x[~erased])


def test_zero_strength_warps_are_identities():
    np.testing.assert_allclose(layers.RandomPerspective(scale=0.0, seed=1)(X).numpy(), X,
                               atol=1e-3)
    np.testing.assert_array_equal(layers.RandomElasticTransform(scale=0.0)(X).numpy(), X)
    np.testing.assert_array_equal(layers.RandomGaussianBlur(factor=0.0)(X).numpy(), X)
    np.testing.assert_array_equal(layers.RandomColorJitter()(X).numpy(), X)


@pytest.mark.parametrize("layer", [layers.RandAugment(seed=3), layers.AugMix(seed=3),
                                   layers.RandomGaussianBlur(seed=3),
                                   layers.RandomElasticTransform(seed=3)],
                         ids=lambda layer: type(layer).__name__)
def test_outputs_stay_in_the_value_range(layer):
    out = layer(X).numpy()
    assert out.shape == X.shape and out.min() >= 0 and out.max() <= 255


def test_pipeline_run_layer_test():
    run_layer_test(layers.Pipeline, init_kwargs={"layers": [
        layers.RandomFlip(seed=1), layers.Resizing(4, 6), layers.RandomContrast(0.2, seed=2)]},
        input_data=np.random.default_rng(0).uniform(0, 1, (2, 8, 9, 3)).astype("float32"),
        expected_output_shape=(2, 4, 6, 3), expected_num_trainable_weights=0,
        # Keras's Pipeline(layers, name) takes no dtype for the float64 copy; its layers
        # are gradient-checked on their own.
        run_gradient_check=False)


def test_pipeline_chains_and_round_trips():
    pipeline = layers.Pipeline([layers.RandomFlip("horizontal", seed=1),
                                layers.RandomBrightness(0.1, seed=2), layers.Resizing(4, 5)])
    expected = layers.Resizing(4, 5)(layers.RandomBrightness(0.1, seed=2)(
        layers.RandomFlip("horizontal", seed=1)(X)))
    np.testing.assert_allclose(pipeline(X).numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(pipeline(X, training=False).numpy(),
                               layers.Resizing(4, 5)(X).numpy(), rtol=1e-6)
    clone = layers.Pipeline.from_config(pipeline.get_config())
    assert [type(la).__name__ for la in clone.layers] == ["RandomFlip", "RandomBrightness",
                                                          "Resizing"]
    assert clone.get_config()["layers"][2]["config"]["height"] == 4
    with pytest.raises(ValueError, match="Received config with layers=None"):
        layers.Pipeline.from_config({"name": "p"})


def test_max_num_bounding_boxes_pads_and_truncates():
    boxes = RNG.uniform(0, 8, (4, 5, 4)).astype("float32")
    labels = np.arange(20, dtype="float32").reshape(4, 5)
    data = {"images": X, "bounding_boxes": {"boxes": boxes, "labels": labels}}
    with pytest.raises(ValueError, match="didn't specify a bounding box format"):
        layers.MaxNumBoundingBoxes(3)(data)
    short = layers.MaxNumBoundingBoxes(3, bounding_box_format="xyxy")(data)["bounding_boxes"]
    np.testing.assert_array_equal(short["boxes"].numpy(), boxes[:, :3])
    long = layers.MaxNumBoundingBoxes(7, fill_value=-2, bounding_box_format="xyxy")(data)[
        "bounding_boxes"]
    assert long["labels"].shape == (4, 7) and np.all(long["labels"].numpy()[:, 5:] == -2)
    flip = layers.RandomFlip(seed=1, bounding_box_format="xyxy")
    assert layers.RandomFlip.from_config(flip.get_config()).bounding_box_format == "xyxy"
    # Geometric layers move boxes now (tests/sdk/layers/test_image_bounding_boxes.py).
    elastic = layers.RandomElasticTransform(bounding_box_format="xyxy")
    with pytest.raises(NotImplementedError, match="RandomElasticTransform does not support"):
        elastic(data)


@pytest.mark.parametrize("call,match", [
    (lambda: layers.CutMix(factor=2.0), "Received: factor=2.0"),
    (lambda: layers.RandomErasing(fill_value=(1, 2)), r"Received: fill_value=\(1, 2\)"),
    (lambda: layers.RandomErasing(scale=(0.1, 0.2, 0.3)), r"Received: scale=\(0.1, 0.2, 0.3\)"),
    (lambda: layers.RandomGaussianBlur(kernel_size=4), "Received: kernel_size=4"),
    (lambda: layers.RandomPerspective(scale=1.5), "Received: scale=1.5"),
    (lambda: layers.RandAugment(factor=3), "Received: factor=3"),
    (lambda: layers.AugMix(value_range=5), "Received: value_range=5"),
])
def test_errors_echo_the_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_augmentation_trains_in_fit_and_saves():
    x = RNG.uniform(0, 1, (8, 12, 12, 3)).astype("float32")
    y = RNG.integers(0, 2, 8)
    augment = lamina.Sequential([layers.RandomFlip("horizontal", seed=1),
                                 layers.RandomRotation(0.1, seed=2),
                                 layers.RandomContrast(0.2, value_range=(0, 1), seed=3)])
    inputs = lamina.Input((12, 12, 3))
    h = augment(layers.Resizing(8, 8)(inputs))
    h = layers.GlobalAveragePooling2D()(layers.Conv2D(2, 3)(h))
    model = lamina.Model(inputs, layers.Dense(2, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    predictions = model.predict(x, verbose=0)
    np.testing.assert_array_equal(predictions, model.predict(x, verbose=0))


def test_a_keras_saved_model_of_image_layers_loads(tmp_path):
    model = lamina.saving.load_model(FIXTURES / "keras_image_model.keras")
    arrays = np.load(FIXTURES / "layers.npz")
    assert [type(la).__name__ for la in model.layers][1:] == [
        "Resizing", "RandomFlip", "RandomRotation", "CenterCrop", "AutoContrast",
        "RandAugment", "Pipeline", "Flatten", "Dense"]
    h = arrays["model/in"]
    for layer in model.layers[1:]:
        h = layer(h, training=False) if layer._call_has_training else layer(h)
    np.testing.assert_allclose(h.numpy(), arrays["model/out"], rtol=1e-5, atol=1e-5)
    model.save(tmp_path / "again.keras")
    again = lamina.saving.load_model(tmp_path / "again.keras")
    assert again.layers[6].get_config()["num_ops"] == 2


def test_a_keras_saved_model_of_image_layers_predicts_as_keras():
    model = lamina.saving.load_model(FIXTURES / "keras_image_model.keras")
    arrays = np.load(FIXTURES / "layers.npz")
    np.testing.assert_allclose(model.predict(arrays["model/in"], verbose=0),
                               arrays["model/out"], rtol=1e-5, atol=1e-5)


REQUIRED = {
    "Resizing": {"height": 4, "width": 5}, "CenterCrop": {"height": 4, "width": 5},
    "RandomCrop": {"height": 4, "width": 5}, "RandomRotation": {"factor": 0.2},
    "RandomZoom": {"height_factor": 0.2},
    "RandomTranslation": {"height_factor": 0.2, "width_factor": 0.2},
    "RandomContrast": {"factor": 0.3}, "RandomBrightness": {"factor": 0.3},
    "RandomColorDegeneration": {"factor": 0.3}, "RandomHue": {"factor": 0.3},
    "RandomSaturation": {"factor": 0.3}, "RandomSharpness": {"factor": 0.3},
    "RandomPosterization": {"factor": 4}, "MaxNumBoundingBoxes": {"max_number": 2},
    # Gaussian fill noise is drawn in the input's layout; a constant fill compares.
    "RandomErasing": {"fill_value": 10.0},
    "RandomColorJitter": {"brightness_factor": 0.2, "contrast_factor": 0.2,
                          "saturation_factor": 0.3, "hue_factor": 0.2},
}
ALL_IMAGE_LAYERS = sorted(set(layers.preprocessing.image.__all__)
                          - {"BaseImagePreprocessingLayer", "Pipeline"})


@pytest.mark.parametrize("name", ALL_IMAGE_LAYERS)
def test_channels_first_and_unbatched_inputs_agree(name):
    import inspect

    kwargs = dict(REQUIRED.get(name, {}))
    if "seed" in inspect.signature(getattr(layers, name).__init__).parameters:
        kwargs["seed"] = 1
    last = getattr(layers, name)(**kwargs)(X).numpy()
    first = getattr(layers, name)(**kwargs, data_format="channels_first")(
        X.transpose(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(first.transpose(0, 2, 3, 1), last, atol=1e-3)
    single = getattr(layers, name)(**kwargs)(X[0]).numpy()
    assert single.shape == last.shape[1:]


@pytest.mark.parametrize("name", [*ALL_IMAGE_LAYERS, "Pipeline"])
def test_every_image_layer_documents_its_shapes(name):
    doc = getattr(layers, name).__doc__ or ""
    assert "Args:" in doc and "Input shape:" in doc and "Output shape:" in doc


PIXEL_LAYERS = ["AugMix", "AutoContrast", "Equalization", "RandomBrightness",
                "RandomColorDegeneration", "RandomColorJitter", "RandomContrast",
                "RandomErasing", "RandomGaussianBlur", "RandomGrayscale", "RandomHue",
                "RandomInvert", "RandomPosterization", "RandomSaturation", "RandomSharpness",
                "Solarization"]


@pytest.mark.parametrize("name", PIXEL_LAYERS)
def test_pixel_value_layers_pass_bounding_boxes_through(name):
    boxes = {"boxes": RNG.uniform(0, 8, (4, 3, 4)).astype("float32"),
             "labels": np.ones((4, 3), "float32")}
    layer = getattr(layers, name)(**REQUIRED.get(name, {}), bounding_box_format="xyxy")
    out = layer({"images": X, "bounding_boxes": boxes})
    assert out["images"].shape == X.shape
    np.testing.assert_array_equal(np.asarray(out["bounding_boxes"]["boxes"]), boxes["boxes"])
