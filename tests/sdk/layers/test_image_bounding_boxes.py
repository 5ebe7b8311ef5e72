"""Bounding boxes through the geometric image preprocessing layers.

Three checks: (1) each layer's ``transform_bounding_boxes`` given Keras's explicit
transformation agrees with real Keras 3.15.1 (tests/fixtures/bounding_boxes/
layer_fixtures.json, made by make_layer_fixtures.py next to it); (2) in a dict call, the
boxes move where the pixels move (white rectangles on black images, one draw per call);
(3) layers without a box transform refuse boxes, naming themselves.
"""

import json
import pathlib

import numpy as np
import pytest

from lamina import layers
from lamina.utils.bounding_boxes import convert_format

FIXTURES = json.loads((pathlib.Path(__file__).parents[2] / "fixtures" / "bounding_boxes"
                       / "layer_fixtures.json").read_text())
SHAPE = tuple(FIXTURES["shape"])
CASES = [(case, fmt) for case in FIXTURES["cases"] for fmt in case["formats"]]


def lamina_transformation(case):
    """Keras's transformation as Lamina's: the dicts share their keys, except RandomCrop
    (Keras: ``(top, left)``) and Resizing (``(height, width)`` in both)."""
    given = case["transformation"]
    if case["layer"] == "RandomCrop":
        return {"top": given[0], "left": given[1], "input_shape": SHAPE}
    if isinstance(given, list):
        return tuple(given)
    return {k: tuple(v) if k == "input_shape" else np.asarray(v) if isinstance(v, list) else v
            for k, v in given.items()}


@pytest.mark.parametrize("case,fmt", CASES,
                         ids=[f"{case['name']}-{fmt}" for case, fmt in CASES])
def test_transform_bounding_boxes_matches_keras(case, fmt):
    entry = case["formats"][fmt]
    layer = getattr(layers, case["layer"])(**case["kwargs"], bounding_box_format=fmt)
    given = {"boxes": np.asarray(entry["boxes"], "float32"),
             "labels": np.asarray(case["labels"])}
    out = layer.transform_bounding_boxes(given, lamina_transformation(case), training=True)
    np.testing.assert_allclose(np.asarray(out["boxes"]), entry["expected"], atol=1e-4,
                               rtol=0)
    np.testing.assert_array_equal(np.asarray(out["labels"]), entry["expected_labels"])


def test_fixture_cases_move_and_drop_boxes():
    # Guards the fixture itself: the layers move boxes and some boxes leave the image.
    moved = [c for c in FIXTURES["cases"]
             if not np.allclose(c["formats"]["xyxy"]["expected"], c["formats"]["xyxy"]["boxes"])]
    assert len(moved) == len(FIXTURES["cases"])
    assert any(-1 in np.asarray(c["formats"]["xyxy"]["expected_labels"])
               for c in FIXTURES["cases"])


# -- boxes follow the pixels ---------------------------------------------------------------

RECTS = [(3, 5, 11, 9), (14, 2, 22, 12), (6, 10, 12, 20), (17, 13, 23, 22)]


def _images(height, width, rects, data_format="channels_last"):
    images = np.zeros((len(rects), height, width, 1), "float32")
    for k, (x1, y1, x2, y2) in enumerate(rects):
        images[k, y1:y2, x1:x2] = 1.0
    return images if data_format == "channels_last" else images.transpose(0, 3, 1, 2)


def _white_boxes(images, data_format="channels_last"):
    """The ``xyxy`` box around each image's white pixels (edges at pixel borders)."""
    images = np.asarray(images)
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    result = []
    for image in images:
        ys, xs = np.nonzero(image[..., 0] > 0.5)
        result.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.asarray(result, "float32")


def _call(layer, height, width, fmt, data_format="channels_last", rects=RECTS):
    boxes = convert_format(np.asarray(rects, "float32")[:, None], "xyxy", fmt, height=height,
                           width=width)
    labels = np.arange(1, len(rects) + 1).reshape(-1, 1)
    out = layer({"images": _images(height, width, rects, data_format),
                 "bounding_boxes": {"boxes": boxes, "labels": labels}})
    shape = out["images"].shape
    out_h, out_w = shape[1:3] if data_format == "channels_last" else shape[2:4]
    moved = convert_format(np.asarray(out["bounding_boxes"]["boxes"]), fmt, "xyxy",
                           height=out_h, width=out_w)[:, 0]
    np.testing.assert_array_equal(np.asarray(out["bounding_boxes"]["labels"]), labels)
    return moved, _white_boxes(out["images"], data_format)


NEAREST = {"interpolation": "nearest", "fill_mode": "constant"}
# (layer, image height, width, tolerance in pixels). Affine warps sample at pixel centres
# about ((W - 1) / 2, (H - 1) / 2) while boxes move their edges: up to a pixel apart.
FOLLOW = {
    "flip": (lambda fmt, df: layers.RandomFlip(seed=4, bounding_box_format=fmt,
                                               data_format=df), 24, 32, 0.0),
    "rotation_90": (lambda fmt, df: layers.RandomRotation(
        (0.25, 0.25), **NEAREST, bounding_box_format=fmt, data_format=df), 24, 24, 1.0),
    "rotation_minus_90": (lambda fmt, df: layers.RandomRotation(
        (-0.25, -0.25), **NEAREST, bounding_box_format=fmt, data_format=df), 24, 24, 1.0),
    "translation": (lambda fmt, df: layers.RandomTranslation(
        0.1, 0.1, **NEAREST, seed=2, bounding_box_format=fmt, data_format=df), 24, 32, 1.0),
    "crop": (lambda fmt, df: layers.RandomCrop(18, 20, seed=3, bounding_box_format=fmt,
                                               data_format=df), 24, 32, 0.0),
    "center_crop": (lambda fmt, df: layers.CenterCrop(20, 26, bounding_box_format=fmt,
                                                      data_format=df), 24, 32, 0.0),
    # Halving the width with nearest sampling puts edges half a pixel off.
    "resize": (lambda fmt, df: layers.Resizing(48, 16, interpolation="nearest",
                                               bounding_box_format=fmt, data_format=df),
               24, 32, 0.5),
    "zoom": (lambda fmt, df: layers.RandomZoom(0.3, **NEAREST, seed=5, bounding_box_format=fmt,
                                               data_format=df), 24, 32, 1.0),
    "shear_square": (lambda fmt, df: layers.RandomShear(0.3, **NEAREST, seed=1,
                                                        bounding_box_format=fmt,
                                                        data_format=df), 24, 24, 1.0),
    "perspective": (lambda fmt, df: layers.RandomPerspective(
        scale=0.3, interpolation="nearest", seed=6, bounding_box_format=fmt, data_format=df),
        24, 32, 1.0),
}


@pytest.mark.parametrize("fmt", ["xyxy", "rel_xyxy", "center_xywh"])
@pytest.mark.parametrize("name", sorted(FOLLOW))
def test_boxes_enclose_the_moved_pixels(name, fmt):
    make, height, width, tolerance = FOLLOW[name]
    moved, white = _call(make(fmt, "channels_last"), height, width, fmt)
    np.testing.assert_allclose(moved, white, atol=tolerance + 1e-4, rtol=0)


@pytest.mark.parametrize("name", ["flip", "crop", "resize", "rotation_90"])
def test_boxes_follow_channels_first_images(name):
    make, height, width, tolerance = FOLLOW[name]
    moved, white = _call(make("xywh", "channels_first"), height, width, "xywh",
                         data_format="channels_first")
    np.testing.assert_allclose(moved, white, atol=tolerance + 1e-4, rtol=0)


def test_one_draw_moves_pixels_and_boxes_alike_across_a_batch():
    # Eight images with their own draws: flipped and unflipped boxes both occur.
    rects = RECTS * 2
    layer = layers.RandomFlip("horizontal", seed=11, bounding_box_format="xyxy")
    moved, white = _call(layer, 24, 32, "xyxy", rects=rects)
    np.testing.assert_array_equal(moved, white)
    flipped = moved[:, 0] != np.asarray(rects)[:, 0]
    assert flipped.any() and not flipped.all()


def test_perspective_moves_only_the_boxes_of_the_warped_images():
    rects = RECTS * 2
    layer = layers.RandomPerspective(factor=0.5, scale=0.4, interpolation="nearest", seed=8,
                                     bounding_box_format="center_xywh")
    moved, white = _call(layer, 24, 32, "center_xywh", rects=rects)
    np.testing.assert_allclose(moved, white, atol=1.0 + 1e-4, rtol=0)
    kept = np.all(moved == np.asarray(rects, "float32"), axis=-1)
    assert kept.any() and not kept.all()


def test_random_crop_resize_path_scales_boxes():
    # An input smaller than the crop is cropped to the aspect ratio and resized.
    layer = layers.RandomCrop(48, 40, bounding_box_format="rel_xyxy")
    moved, white = _call(layer, 24, 32, "rel_xyxy")
    np.testing.assert_allclose(moved, white, atol=1.0)


def test_boxes_leaving_the_image_are_clipped_and_relabelled():
    layer = layers.RandomTranslation((0.5, 0.5), (0.5, 0.5), bounding_box_format="xyxy")
    images = np.zeros((1, 20, 20, 3), "float32")
    boxes = np.array([[[2, 2, 6, 6], [12, 12, 18, 18]]], "float32")
    out = layer({"images": images,
                 "bounding_boxes": {"boxes": boxes, "labels": np.array([[3, 4]])}})
    np.testing.assert_array_equal(np.asarray(out["bounding_boxes"]["boxes"]),
                                  [[[12, 12, 16, 16], [20, 20, 20, 20]]])
    np.testing.assert_array_equal(np.asarray(out["bounding_boxes"]["labels"]), [[3, -1]])


def test_unbatched_call_keeps_unbatched_boxes():
    layer = layers.RandomFlip("vertical", seed=0, bounding_box_format="xyxy")
    image = np.zeros((10, 8, 3), "float32")
    out = layer({"images": image, "bounding_boxes": {"boxes": [[1, 2, 3, 4]], "labels": [5]}})
    boxes = np.asarray(out["bounding_boxes"]["boxes"])
    assert boxes.shape == (1, 4) and np.asarray(out["bounding_boxes"]["labels"]).shape == (1,)
    assert boxes.tolist() in ([[1, 2, 3, 4]], [[1, 6, 3, 8]])


def test_outside_training_random_layers_keep_boxes_and_resizing_moves_them():
    data = {"images": np.zeros((1, 10, 10, 3), "float32"),
            "bounding_boxes": {"boxes": np.array([[[1, 2, 5, 6]]], "float32"),
                               "labels": np.array([[1]])}}
    for layer in (layers.RandomFlip(bounding_box_format="xyxy"),
                  layers.RandomRotation(0.3, bounding_box_format="xyxy"),
                  layers.RandomCrop(4, 4, bounding_box_format="xyxy"),
                  layers.RandomPerspective(bounding_box_format="xyxy")):
        out = layer(data, training=False)
        np.testing.assert_array_equal(np.asarray(out["bounding_boxes"]["boxes"]),
                                      [[[1, 2, 5, 6]]])
    out = layers.Resizing(20, 5, bounding_box_format="xyxy")(data, training=False)
    np.testing.assert_array_equal(np.asarray(out["bounding_boxes"]["boxes"]),
                                  [[[0.5, 4, 2.5, 12]]])


# -- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [
    ("RandomElasticTransform", {}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"value_range": (0, 255)}),
])
def test_layers_without_a_box_transform_name_themselves(name, kwargs):
    layer = getattr(layers, name)(**kwargs, bounding_box_format="xyxy")
    data = {"images": np.zeros((1, 8, 8, 3), "float32"),
            "bounding_boxes": {"boxes": np.zeros((1, 1, 4)), "labels": np.zeros((1, 1))}}
    with pytest.raises(NotImplementedError, match=f"{name} does not support `bounding_boxes`"):
        layer(data)


def test_bad_boxes_are_refused_with_their_shape():
    layer = layers.RandomFlip(bounding_box_format="xyxy")
    data = {"images": np.zeros((2, 8, 8, 3), "float32"),
            "bounding_boxes": {"boxes": np.zeros((2, 3)), "labels": np.zeros((2,))}}
    with pytest.raises(ValueError, match=r"Received: boxes.shape=\(2, 3\)"):
        layer(data)
    with pytest.raises(ValueError, match="didn't specify a bounding box format"):
        layers.Resizing(4, 4)({"images": data["images"], "bounding_boxes": {}})
