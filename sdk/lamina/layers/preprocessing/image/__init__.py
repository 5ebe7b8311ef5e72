"""Image preprocessing and augmentation layers (Keras's ``image_preprocessing`` family),
one module per kind: ``resizing`` (Resizing, CenterCrop, RandomCrop), ``geometric``
(flips and affine warps), ``color`` and ``intensity`` (pixel-value maps)."""

from lamina.layers.preprocessing.image.base import BaseImagePreprocessingLayer
from lamina.layers.preprocessing.image.color import (
    RandomBrightness,
    RandomColorDegeneration,
    RandomContrast,
    RandomGrayscale,
    RandomHue,
    RandomSaturation,
    RandomSharpness,
)
from lamina.layers.preprocessing.image.geometric import (
    RandomFlip,
    RandomRotation,
    RandomShear,
    RandomTranslation,
    RandomZoom,
)
from lamina.layers.preprocessing.image.intensity import (
    AutoContrast,
    Equalization,
    RandomInvert,
    RandomPosterization,
    Solarization,
)
from lamina.layers.preprocessing.image.resizing import CenterCrop, RandomCrop, Resizing

__all__ = ["AutoContrast", "BaseImagePreprocessingLayer", "CenterCrop", "Equalization",
           "RandomBrightness", "RandomColorDegeneration", "RandomContrast", "RandomCrop",
           "RandomFlip", "RandomGrayscale", "RandomHue", "RandomInvert", "RandomPosterization",
           "RandomRotation", "RandomSaturation", "RandomSharpness", "RandomShear",
           "RandomTranslation", "RandomZoom", "Resizing", "Solarization"]
