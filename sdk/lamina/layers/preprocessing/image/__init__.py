"""Image preprocessing and augmentation layers (Keras's ``image_preprocessing`` family),
one module per kind: ``resizing`` (Resizing, CenterCrop, RandomCrop), ``geometric``
(flips and affine warps), ``color`` and ``intensity`` (pixel-value maps), ``mixing``
(MixUp, CutMix, RandomErasing), ``random_warps`` (blur, elastic, perspective)."""

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
from lamina.layers.preprocessing.image.composite import (
    AugMix,
    MaxNumBoundingBoxes,
    Pipeline,
    RandAugment,
    RandomColorJitter,
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
    ContrastLimitedAdaptiveHistogramEqualization,
    Equalization,
    RandomInvert,
    RandomPosterization,
    Solarization,
)
from lamina.layers.preprocessing.image.mixing import CutMix, MixUp, RandomErasing
from lamina.layers.preprocessing.image.random_warps import (
    RandomElasticTransform,
    RandomGaussianBlur,
    RandomPerspective,
)
from lamina.layers.preprocessing.image.resizing import CenterCrop, RandomCrop, Resizing

__all__ = ["AugMix", "MaxNumBoundingBoxes", "Pipeline", "RandAugment", "RandomColorJitter",
           "AutoContrast", "BaseImagePreprocessingLayer",
           "ContrastLimitedAdaptiveHistogramEqualization", "CenterCrop", "CutMix", "Equalization",
           "MixUp", "RandomElasticTransform", "RandomErasing", "RandomGaussianBlur",
           "RandomPerspective",
           "RandomBrightness", "RandomColorDegeneration", "RandomContrast", "RandomCrop",
           "RandomFlip", "RandomGrayscale", "RandomHue", "RandomInvert", "RandomPosterization",
           "RandomRotation", "RandomSaturation", "RandomSharpness", "RandomShear",
           "RandomTranslation", "RandomZoom", "Resizing", "Solarization"]
