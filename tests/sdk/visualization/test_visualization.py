"""lamina.visualization: masks against Keras 3.15.1, boxes by geometry, galleries as PNGs."""

import json
import pathlib

import numpy as np
import pytest

from lamina import visualization as V

FIX = json.loads((pathlib.Path(__file__).parents[2] / "fixtures" / "visualization"
                  / "segmentation_masks.json").read_text())


@pytest.mark.parametrize("case", sorted(FIX["cases"]))
def test_draw_segmentation_masks_equals_keras(case):
    want = FIX["cases"][case]
    kwargs = dict(want["kwargs"])
    if "color_mapping" in kwargs:
        kwargs["color_mapping"] = {int(k): v for k, v in kwargs["color_mapping"].items()}
    images = np.asarray(FIX["images"], "float32")
    masks = np.asarray(FIX["masks"], "int32")
    got = V.draw_segmentation_masks(images, masks, **kwargs)
    assert str(got.dtype) == want["dtype"]
    np.testing.assert_array_equal(got, np.asarray(want["out"], want["dtype"]))
    first = V.draw_segmentation_masks(images.transpose(0, 3, 1, 2),
                                      masks.transpose(0, 3, 1, 2),
                                      data_format="channels_first", **kwargs)
    np.testing.assert_array_equal(first, got)


def test_draw_segmentation_masks_errors():
    images = np.zeros((1, 4, 4, 3), "float32")
    with pytest.raises(TypeError, match="segmentation_masks.dtype=float32"):
        V.draw_segmentation_masks(images, np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match=r"images.shape=\(4, 4, 3\)"):
        V.draw_segmentation_masks(images[0], np.zeros((4, 4, 1), "int32"))


def test_draw_bounding_boxes_paints_edges_only():
    images = np.zeros((2, 40, 50, 3), "uint8")
    boxes = {"boxes": np.array([[[10, 5, 30, 25], [0, 0, 5, 5]],
                                [[0.2, 0.1, 0.6, 0.5], [0, 0, 1, 1]]], "float32"),
             "labels": np.array([[1, -1], [0, -1]])}
    rel = {"boxes": boxes["boxes"][1:], "labels": boxes["labels"][1:]}
    out = V.draw_bounding_boxes(images[:1], {"boxes": boxes["boxes"][:1],
                                             "labels": boxes["labels"][:1]},
                                "xyxy", color=(255, 0, 0), line_thickness=1)
    assert out.dtype == np.uint8 and out.shape == (1, 40, 50, 3)
    red = (out[0] == (255, 0, 0)).all(-1)
    assert red[5, 10:31].all() and red[25, 10:31].all()
    assert red[5:26, 10].all() and red[5:26, 30].all()
    assert red.sum() == 2 * 21 + 2 * 19
    assert not red[6:25, 11:30].any()  # interior untouched; label -1 skipped
    assert (out[0][..., 1:] == 0).all()
    thick = V.draw_bounding_boxes(images[:1], {"boxes": boxes["boxes"][:1],
                                               "labels": boxes["labels"][:1]},
                                  "xyxy", color=(0, 255, 0), line_thickness=3)
    green = thick[0, ..., 1] == 255
    assert green[4:7, 10:31].all() and not green[8, 12:29].any()
    relative = V.draw_bounding_boxes(images[1:], rel, "rel_xyxy", color=(9, 9, 9),
                                     line_thickness=1)
    painted = (relative[0] == 9).all(-1)
    assert painted[4, 10:31].all() and painted[20, 10:31].all()  # 0.1*40, 0.5*40
    floats = V.draw_bounding_boxes(np.full((1, 8, 8, 3), 0.5, "float32"),
                                   {"boxes": [[[1, 1, 6, 6]]], "labels": [[0]]}, "xyxy",
                                   line_thickness=1)
    assert floats[0, 3, 3, 0] == 127 and floats[0, 1, 1, 0] == 128


def test_draw_bounding_boxes_writes_labels_with_pillow():
    pytest.importorskip("PIL")
    images = np.zeros((1, 64, 96, 3), "uint8")
    boxes = {"boxes": np.array([[[20, 40, 80, 60]]], "float32"), "labels": np.array([[2]]),
             "confidences": np.array([[0.75]])}
    out = V.draw_bounding_boxes(images, boxes, "xyxy", class_mapping={2: "cat"},
                                color=(0, 0, 255), line_thickness=1)
    blue = out[0, ..., 2] > 0
    above = blue[:39, :]  # text goes above the box when it fits
    assert above.sum() > 20
    plain = V.draw_bounding_boxes(images, boxes, "xyxy", color=(0, 0, 255), line_thickness=1)
    assert not (plain[0, :39, :, 2] > 0).any()
    chw = V.draw_bounding_boxes(images.transpose(0, 3, 1, 2), boxes, "xyxy",
                                class_mapping={2: "cat"}, color=(0, 0, 255),
                                line_thickness=1, data_format="channels_first")
    np.testing.assert_array_equal(chw.transpose(0, 2, 3, 1), out)


def test_draw_bounding_boxes_errors():
    images = np.zeros((1, 8, 8, 3), "uint8")
    with pytest.raises(TypeError, match="should be a dict"):
        V.draw_bounding_boxes(images, [[0, 0, 1, 1]], "xyxy")
    with pytest.raises(ValueError, match="'boxes' and 'labels'"):
        V.draw_bounding_boxes(images, {"boxes": np.zeros((1, 1, 4))}, "xyxy")
    with pytest.raises(ValueError, match="data_format='nhwc'"):
        V.draw_bounding_boxes(images, {"boxes": [[[0, 0, 1, 1]]], "labels": [[0]]}, "xyxy",
                              data_format="nhwc")


def _png_is_not_blank(path):
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"), "float32")
    assert pixels.shape[0] > 20 and pixels.shape[1] > 20
    assert pixels.std() > 5.0


@pytest.fixture
def agg():
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    matplotlib.use("Agg")
    return matplotlib


def test_plot_image_gallery_writes_png(tmp_path, agg):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(4, 16, 16, 3)).astype("float32")
    path = tmp_path / "gallery.png"
    V.plot_image_gallery(images, y_true=np.array([0, 1, 0, 1]), y_pred=np.array([1, 1, 0, 0]),
                         label_map={0: "cat", 1: "dog"}, value_range=(0, 1), path=str(path))
    _png_is_not_blank(path)
    with pytest.raises(ValueError, match="label_map"):
        V.plot_image_gallery(images, y_true=[0, 1, 0, 1], path=str(path))
    with pytest.raises(ValueError, match="either `path`"):
        V.plot_image_gallery(images, path=str(path), show=True)


def test_plot_bounding_box_and_mask_galleries_write_png(tmp_path, agg):
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    boxes = {"boxes": np.array([[[4, 4, 20, 20]], [[8, 2, 30, 12]]], "float32"),
             "labels": np.array([[0], [1]])}
    path = tmp_path / "boxes.png"
    V.plot_bounding_box_gallery(images, "xyxy", y_true=boxes, y_pred=boxes, legend=True,
                                class_mapping={0: "a", 1: "b"}, path=str(path), rows=1, cols=2)
    _png_is_not_blank(path)
    masks = rng.integers(0, 3, size=(2, 32, 32, 1))
    path = tmp_path / "masks.png"
    V.plot_segmentation_mask_gallery(images, num_classes=3, y_true=masks, y_pred=masks,
                                     path=str(path))
    _png_is_not_blank(path)
    with pytest.raises(ValueError, match="`legend` OR `legend_handles`"):
        V.plot_bounding_box_gallery(images, "xyxy", legend=True, legend_handles=[1],
                                    path=str(path))


def test_galleries_name_matplotlib_when_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="requires the `matplotlib` package"):
        V.plot_image_gallery(np.zeros((1, 4, 4, 3)), path="x.png")
    with pytest.raises(ImportError, match="plot_segmentation_mask_gallery"):
        V.plot_segmentation_mask_gallery(np.zeros((1, 4, 4, 3)), 2, path="x.png")
