"""Segmentation masks in dict inputs: pixel-value layers leave them as given, geometric
ones move them with the pixels (Keras 3.15.1, checked in a side venv: every layer
listed in PIXEL_ONLY returned the masks unchanged; AugMix and RandAugment change them)."""

import numpy as np
import pytest

from lamina import layers

PIXEL_ONLY = {
    "RandomBrightness": lambda: layers.RandomBrightness(0.5, seed=1),
    "RandomContrast": lambda: layers.RandomContrast(0.5, seed=1),
    "RandomErasing": lambda: layers.RandomErasing(factor=1.0, seed=1),
    "RandomGaussianBlur": lambda: layers.RandomGaussianBlur(factor=1.0, seed=1),
    "RandomColorJitter": lambda: layers.RandomColorJitter(brightness_factor=0.5, seed=1),
    "RandomSaturation": lambda: layers.RandomSaturation(0.5, seed=1),
    "RandomHue": lambda: layers.RandomHue(0.5, seed=1),
    "RandomSharpness": lambda: layers.RandomSharpness(0.5, seed=1),
    "RandomPosterization": lambda: layers.RandomPosterization(factor=(1, 4), seed=1),
    "Solarization": lambda: layers.Solarization(addition_factor=0.5, threshold_factor=0.5,
                                                seed=1),
    "RandomInvert": lambda: layers.RandomInvert(factor=1.0, seed=1),
    "RandomGrayscale": lambda: layers.RandomGrayscale(factor=1.0, seed=1),
    "RandomColorDegeneration": lambda: layers.RandomColorDegeneration(0.5, seed=1),
    "AutoContrast": lambda: layers.AutoContrast(),
    "Equalization": lambda: layers.Equalization(),
}


def _data():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    masks = rng.integers(0, 3, (2, 16, 16, 1)).astype("float32")
    return images, masks


@pytest.mark.parametrize("name", sorted(PIXEL_ONLY))
def test_pixel_value_layers_return_masks_as_given(name):
    images, masks = _data()
    out = PIXEL_ONLY[name]()({"images": images, "segmentation_masks": masks}, training=True)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), masks)
    if name != "RandomErasing":  # erases nothing at these settings, as Keras's
        assert not np.array_equal(np.asarray(out["images"]), images)  # the images changed


def test_geometric_layers_move_masks_with_the_pixels():
    images, masks = _data()
    layer = layers.RandomRotation((0.25, 0.25), fill_mode="constant", interpolation="nearest")
    out = layer({"images": images, "segmentation_masks": masks}, training=True)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"])[..., 0],
                                  np.rot90(masks[..., 0], k=1, axes=(1, 2)))


def test_augmix_mixes_the_masks_as_keras_does():
    images, masks = _data()
    out = layers.AugMix(seed=1)({"images": images, "segmentation_masks": masks},
                                training=True)
    assert np.asarray(out["segmentation_masks"]).shape == masks.shape
    assert not np.array_equal(np.asarray(out["segmentation_masks"]), masks)
