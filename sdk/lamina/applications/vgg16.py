"""``keras.applications.vgg16``: VGG16 (13 convolutions and 3 dense layers)."""

from __future__ import annotations

from lamina.applications import imagenet_utils
from lamina.applications._vgg import vgg
from lamina.applications.imagenet_utils import decode_predictions

__all__ = ["VGG16", "decode_predictions", "preprocess_input"]

_HASHES = ("64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc")


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,  # noqa: N802
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    """Instantiate the VGG16 architecture (Keras's layer names and weight files).

    Args:
        include_top: whether to include the 3 fully-connected layers at the top.
        weights: None (random initialization), ``"imagenet"`` (Keras's published
            weights, downloaded once into ``~/.keras/models``) or a weights file path.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional ``(height, width, channels)``; sizes at least 32. With
            ``include_top`` and ImageNet weights it must be ``(224, 224, 3)``.
        pooling: ``None``, ``"avg"`` or ``"max"`` global pooling when
            ``include_top`` is False.
        classes: number of classes for the classifier.
        classifier_activation: activation of the top layer (None gives logits).
        name: the model's name.

    Returns:
        A functional :class:`~lamina.Model`.

    Raises:
        ValueError: for invalid ``weights``, ``classes``, ``input_shape`` or
            classifier activation with pretrained weights.
    """
    return vgg((2, 2, 3, 3, 3), "vgg16", _HASHES, include_top, weights, input_tensor, input_shape,
               pooling, classes, classifier_activation, name)


def preprocess_input(x, data_format=None):
    """Caffe-style scaling: RGB to BGR, minus the ImageNet means (see
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")
