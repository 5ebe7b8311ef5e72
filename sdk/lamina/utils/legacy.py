"""``keras.utils.legacy``: Keras 2's serialization helpers (also ``keras.legacy.saving``)."""

from lamina.legacy.saving import deserialize_keras_object, serialize_keras_object

__all__ = ["deserialize_keras_object", "serialize_keras_object"]
