"""``keras.legacy``: Keras 2's serialization format (``legacy.saving``)."""

from lamina.legacy import saving

__all__ = ["saving"]
