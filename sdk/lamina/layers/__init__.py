"""Layers with Keras's names, arguments and weight layouts."""

from lamina.layers.core import Activation, Dense, Identity, Lambda
from lamina.layers.input_layer import Input, InputLayer
from lamina.layers.layer import Layer
from lamina.layers.regularization import Dropout
from lamina.layers.reshaping import Flatten, Reshape

__all__ = [
    "Activation", "Dense", "Dropout", "Flatten", "Identity", "Input", "InputLayer",
    "Lambda", "Layer", "Reshape",
]
