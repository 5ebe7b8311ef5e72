"""Preprocessing layers (``keras.layers``'s preprocessing family), one module per kind."""

from lamina.layers.preprocessing.normalization import Normalization, Rescaling

__all__ = ["Normalization", "Rescaling"]
