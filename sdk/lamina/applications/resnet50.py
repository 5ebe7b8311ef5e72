"""``keras.applications.resnet50``: ResNet50 with the caffe-style preprocessing."""

from lamina.applications.resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "decode_predictions", "preprocess_input"]
