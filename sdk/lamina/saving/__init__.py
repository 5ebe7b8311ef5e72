"""Saving and loading in Keras's formats: configs, ``.keras``, ``.weights.h5``, legacy ``.h5``.

Loading is safe by default: classes resolve only through Lamina's registry, a foreign
``module`` in a file is refused, Lambda layers need ``safe_mode=False``, and sizes are
capped before anything is allocated.
"""

from lamina.saving.file_editor import KerasFileEditor
from lamina.saving.registry import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
    register_serializable,
)
from lamina.saving.saving_api import load_model, load_weights, save_model, save_weights
from lamina.saving.serialization import deserialize_keras_object, serialize_keras_object

__all__ = [
    "CustomObjectScope", "KerasFileEditor", "custom_object_scope", "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name", "get_registered_object", "load_model", "load_weights",
    "register_keras_serializable", "register_serializable", "save_model", "save_weights",
    "serialize_keras_object",
]
