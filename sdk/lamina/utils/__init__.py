"""Utilities: seeding, naming, array helpers (``pad_sequences``, ``normalize``,
``to_categorical``), the ``Progbar``."""

from __future__ import annotations

import random as _py_random

from lamina.backend import is_keras_tensor, standardize_dtype
from lamina.backend import random as _random
from lamina.backend.config import clear_session
from lamina.utils.audio_dataset_utils import audio_dataset_from_directory
from lamina.utils.batch_packing import pack_x_y_sample_weight, unpack_x_y_sample_weight
from lamina.utils.config import Config, get_source_inputs
from lamina.utils.dataset_utils import split_dataset
from lamina.utils.file_utils import get_file
from lamina.utils.image_dataset_utils import image_dataset_from_directory
from lamina.utils.image_utils import array_to_img, img_to_array, load_img, save_img
from lamina.utils.model_visualization import model_to_dot, plot_model
from lamina.utils.numerical_utils import normalize
from lamina.utils.progbar import Progbar
from lamina.utils.py_dataset import PyDataset, Sequence
from lamina.utils.sequence_utils import pad_sequences
from lamina.utils.text_dataset_utils import text_dataset_from_directory
from lamina.utils.timeseries_dataset_utils import timeseries_dataset_from_array


def set_random_seed(seed: int) -> None:
    """Seed every random source Lamina uses (and Python's and numpy's global ones).

    The same seed gives bit-identical weights, dropout masks, shuffles and so
    training results on the same machine.

    Args:
        seed: a non-negative integer.

    Raises:
        ValueError: if ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    _py_random.seed(seed)
    _random.set_seed(seed)


def to_categorical(x, num_classes=None, dtype="float32"):
    """One-hot encode integer class ids (``keras.utils.to_categorical``)."""
    import numpy as np

    x = np.asarray(x, dtype="int64")
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if num_classes is None:
        num_classes = int(x.max()) + 1
    out = np.zeros((x.size, num_classes), dtype=dtype)
    out[np.arange(x.size), x] = 1
    return out.reshape(shape + (num_classes,))


# Keras also exports the saving registry here; loaded on first use (saving needs h5py).
_FROM_SAVING = ("CustomObjectScope", "custom_object_scope", "deserialize_keras_object",
                "get_custom_objects", "get_registered_name", "get_registered_object",
                "register_keras_serializable", "serialize_keras_object")
_FROM_CONFIG = ("disable_interactive_logging", "enable_interactive_logging",
                "is_interactive_logging_enabled")

__all__ = ["Progbar", "PyDataset", "Sequence", "clear_session", "get_file", "is_keras_tensor",
           "array_to_img", "audio_dataset_from_directory", "img_to_array", "load_img",
           "save_img", "split_dataset", "Config", "get_source_inputs", "model_to_dot",
           "plot_model",
           "image_dataset_from_directory", "text_dataset_from_directory",
           "timeseries_dataset_from_array", "normalize", "pack_x_y_sample_weight",
           "pad_sequences", "set_random_seed", "standardize_dtype", "to_categorical",
           "unpack_x_y_sample_weight", "FeatureSpace", *_FROM_SAVING,
           *_FROM_CONFIG]


def __getattr__(name):
    if name == "legacy":  # Keras 2's serialization helpers, loaded on first use
        import importlib

        return importlib.import_module("lamina.utils.legacy")
    if name in _FROM_SAVING:
        from lamina import saving

        return getattr(saving, name)
    if name == "bounding_boxes":  # keras.utils.bounding_boxes, loaded on first use
        import importlib

        return importlib.import_module("lamina.utils.bounding_boxes")
    if name == "FeatureSpace":
        from lamina.utils.feature_space import FeatureSpace

        return FeatureSpace
    if name in _FROM_CONFIG:
        from lamina import config

        return getattr(config, name)
    raise AttributeError(f"module 'lamina.utils' has no attribute {name!r}")
