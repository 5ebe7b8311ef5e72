"""Preprocessing layers (``keras.layers``'s preprocessing family), one module per kind."""

from lamina.layers.preprocessing.audio import MelSpectrogram, STFTSpectrogram
from lamina.layers.preprocessing.category_encoding import CategoryEncoding
from lamina.layers.preprocessing.discretization import Discretization
from lamina.layers.preprocessing.hashing import HashedCrossing, Hashing
from lamina.layers.preprocessing.image import *  # noqa: F403  (image layers)
from lamina.layers.preprocessing.image import __all__ as _image_names
from lamina.layers.preprocessing.integer_lookup import IntegerLookup
from lamina.layers.preprocessing.normalization import Normalization, Rescaling
from lamina.layers.preprocessing.string_lookup import StringLookup
from lamina.layers.preprocessing.text_vectorization import TextVectorization

__all__ = ["Normalization", "Rescaling",
           "HashedCrossing", "Hashing", "IntegerLookup", "StringLookup", "TextVectorization",
           "CategoryEncoding", "Discretization", "MelSpectrogram", "STFTSpectrogram"]
__all__ += [n for n in _image_names if n != "BaseImagePreprocessingLayer"]
