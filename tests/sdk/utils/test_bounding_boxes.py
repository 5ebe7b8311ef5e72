"""lamina.utils.bounding_boxes against Keras 3.15.1 (tests/fixtures/bounding_boxes/)."""

import json
import pathlib

import numpy as np
import pytest

import lamina
from lamina.utils import bounding_boxes as B

FIX = json.loads((pathlib.Path(__file__).parents[2] / "fixtures" / "bounding_boxes"
                  / "bounding_boxes.json").read_text())
H, W = FIX["height"], FIX["width"]
BOXES = np.asarray(FIX["boxes"], "float32")
OTHER = np.asarray(FIX["other"], "float32")
ANCHORS = np.asarray(FIX["anchors"], "float32")
VAR = [0.1, 0.1, 0.2, 0.2]


def close(got, want, rtol=1e-5, atol=1e-4):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want, "float32"), rtol=rtol,
                               atol=atol)


@pytest.mark.parametrize("pair", sorted(FIX["convert"]))
def test_convert_format_equals_keras(pair):
    src, tgt = pair.split(">")
    src_boxes = B.convert_format(BOXES, "xyxy", src, height=H, width=W)
    got = B.convert_format(src_boxes, src.upper(), tgt, height=H, width=W)
    assert got.dtype == np.float32 and got.shape == BOXES.shape
    close(got, FIX["convert"][pair])


def test_convert_format_dicts_and_errors():
    result = B.convert_format({"boxes": BOXES, "labels": [1]}, "xyxy", "xywh")
    assert result["labels"] == [1]
    close(result["boxes"], FIX["convert"]["xyxy>xywh"])
    with pytest.raises(ValueError, match=r"boxes.shape=\(2, 3\)"):
        B.convert_format(np.zeros((2, 3)), "xyxy", "xywh")
    with pytest.raises(ValueError, match="target='xyzw'"):
        B.convert_format(BOXES, "xyxy", "xyzw")
    with pytest.raises(ValueError, match="height=None"):
        B.convert_format(BOXES, "xyxy", "rel_xyxy")
    tensor = lamina.ops.convert_to_tensor(BOXES)
    close(B.convert_format(tensor, "xyxy", "yxyx"), FIX["convert"]["xyxy>yxyx"])


def test_clip_to_image_size_equals_keras():
    wild = np.asarray(FIX["clip_in"], "float32")
    got = B.clip_to_image_size({"boxes": wild, "labels": np.array([0, 1, 2])},
                               height=100, width=120)
    close(got["boxes"], FIX["clip"]["boxes"])
    np.testing.assert_array_equal(got["labels"], FIX["clip"]["labels"])
    got = B.clip_to_image_size({"boxes": wild / 100.0, "labels": np.array([3, 4, 5])},
                               bounding_box_format="rel_xyxy")
    close(got["boxes"], FIX["clip_rel"]["boxes"])
    np.testing.assert_array_equal(got["labels"], FIX["clip_rel"]["labels"])
    with pytest.raises(ValueError, match="height"):
        B.clip_to_image_size({"boxes": wild})
    with pytest.raises(NotImplementedError, match="bounding_box_format='xywh'"):
        B.clip_to_image_size({"boxes": wild}, 10, 10, bounding_box_format="xywh")


def test_affine_crop_pad_equal_keras():
    params = {k: np.asarray(v, "float32") for k, v in FIX["affine_params"].items()}
    close(B.affine_transform(BOXES, height=H, width=W, **params), FIX["affine"])
    close(B.affine_transform(BOXES, height=H, width=W, center_x=0.3, center_y=0.6, **params),
          FIX["affine_center"])
    close(B.crop(BOXES, top=10, left=20, height=40, width=30), FIX["crop"])
    close(B.pad(BOXES, top=7, left=3), FIX["pad"])
    for fn, kwargs in ((B.crop, dict(top=0, left=0, height=1, width=1)),
                       (B.pad, dict(top=0, left=0))):
        with pytest.raises(NotImplementedError, match="'yxyx'"):
            fn(BOXES, bounding_box_format="yxyx", **kwargs)


def test_affine_identity_keeps_boxes():
    ones, zeros = np.ones(2, "float32"), np.zeros(2, "float32")
    got = B.affine_transform(BOXES, zeros, zeros, zeros, ones, zeros, zeros, H, W)
    close(got, BOXES)


def test_deltas_equal_keras_and_round_trip():
    deltas = B.encode_box_to_deltas(ANCHORS, BOXES, "xyxy", "xyxy")
    close(deltas, FIX["encode"])
    close(B.encode_box_to_deltas(ANCHORS, BOXES, "xyxy", "rel_xyxy",
                                 encoding_format="center_xywh", variance=VAR,
                                 image_shape=(H, W, 3)), FIX["encode_var"])
    close(B.decode_deltas_to_boxes(ANCHORS, deltas, "xyxy", "xywh"), FIX["decode"])
    close(B.decode_deltas_to_boxes(ANCHORS, deltas, "xyxy", "rel_yxyx",
                                   encoded_format="center_xywh", variance=VAR,
                                   image_shape=(H, W, 3)), FIX["decode_var"])
    back = B.decode_deltas_to_boxes({"p3": ANCHORS}, {"p3": deltas}, "xyxy", "xyxy")
    close(back["p3"], BOXES, atol=1e-3)
    with pytest.raises(ValueError, match="variance"):
        B.encode_box_to_deltas(ANCHORS, BOXES, "xyxy", "xyxy", variance=[1, 2])
    with pytest.raises(ValueError, match="encoded_format='xyxy'"):
        B.decode_deltas_to_boxes(ANCHORS, deltas, "xyxy", "xyxy", encoded_format="xyxy")


def test_iou_and_ciou_equal_keras():
    close(B.compute_iou(BOXES[0], OTHER[0], "xyxy"), FIX["iou"])
    close(B.compute_iou(BOXES, OTHER, "xyxy"), FIX["iou_batched"])
    masked = np.asarray(FIX["masked"], "float32")
    got = B.compute_iou(masked, OTHER, "xyxy", use_masking=True, mask_val=-7)
    close(got, FIX["iou_masked"])
    assert (got[:, 1] == -7).all()
    rel = B.convert_format(BOXES, "xyxy", "rel_yxyx", height=H, width=W)
    rel_other = B.convert_format(OTHER, "xyxy", "rel_yxyx", height=H, width=W)
    close(B.compute_iou(rel, rel_other, "rel_yxyx", image_shape=(H, W, 3)), FIX["iou_rel"])
    close(B.compute_ciou(BOXES, OTHER, "xyxy"), FIX["ciou"])
    cw = B.convert_format(BOXES, "xyxy", "center_xywh")
    ow = B.convert_format(OTHER, "xyxy", "center_xywh")
    close(B.compute_ciou(cw, ow, "center_xywh"), FIX["ciou_center"])
    close(np.diag(B.compute_iou(BOXES[0], BOXES[0], "xyxy")), np.ones(5))
    with pytest.raises(ValueError, match="image_shape"):
        B.compute_iou(rel, rel_other, "rel_yxyx")
    with pytest.raises(ValueError, match="len\\(boxes1.shape\\)=1"):
        B.compute_iou(BOXES[0, 0], OTHER[0], "xyxy")
    with pytest.raises(ValueError, match="image_shape"):
        B.compute_ciou(rel, rel_other, "rel_xyxy")
