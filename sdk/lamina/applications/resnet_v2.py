"""``keras.applications.resnet_v2``: pre-activation ResNets (He et al., 2016)."""

from __future__ import annotations

from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions
from lamina.applications.resnet import ResNet, stack_residual_blocks_v2

__all__ = ["ResNet101V2", "ResNet152V2", "ResNet50V2", "decode_predictions",
           "preprocess_input"]


def _v2(blocks):
    def stack_fn(x):
        x = stack_residual_blocks_v2(x, 64, blocks[0], name="conv2")
        x = stack_residual_blocks_v2(x, 128, blocks[1], name="conv3")
        x = stack_residual_blocks_v2(x, 256, blocks[2], name="conv4")
        return stack_residual_blocks_v2(x, 512, blocks[3], stride1=1, name="conv5")
    return stack_fn


def ResNet50V2(include_top=True, weights="imagenet", input_tensor=None,  # noqa: N802
               input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
               name="resnet50v2"):
    return ResNet(_v2((3, 4, 6, 3)), True, True, include_top, weights, input_tensor,
                  input_shape, pooling, classes, classifier_activation, name,
                  weights_name="resnet50v2")


def ResNet101V2(include_top=True, weights="imagenet", input_tensor=None,  # noqa: N802
                input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="resnet101v2"):
    return ResNet(_v2((3, 4, 23, 3)), True, True, include_top, weights, input_tensor,
                  input_shape, pooling, classes, classifier_activation, name,
                  weights_name="resnet101v2")


def ResNet152V2(include_top=True, weights="imagenet", input_tensor=None,  # noqa: N802
                input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="resnet152v2"):
    return ResNet(_v2((3, 8, 36, 3)), True, True, include_top, weights, input_tensor,
                  input_shape, pooling, classes, classifier_activation, name,
                  weights_name="resnet152v2")


for _fn, _depth in ((ResNet50V2, 50), (ResNet101V2, 101), (ResNet152V2, 152)):
    _fn.__doc__ = (f"Instantiate the ResNet{_depth}V2 architecture (Keras's layer names)."
                   "\n" + _common.ARGS_DOC)


def preprocess_input(x, data_format=None):
    """Scale pixels to ``[-1, 1]`` ("tf" mode of
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
