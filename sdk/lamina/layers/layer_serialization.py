"""``lamina.layers.serialize`` / ``deserialize``: Keras's layer (de)serialisation functions.

Both go through :mod:`lamina.saving.serialization`: deserialisation resolves class names
only through the allowlist (Lamina's own layers, registered classes and the
``custom_objects`` given), never by importing a module named in the config.
"""

from __future__ import annotations


def serialize(layer):
    """A layer's Keras 3 config envelope (``module``, ``class_name``, ``config``, ...).

    Args:
        layer: a layer (or model).

    Returns:
        A JSON-compatible dict.
    """
    from lamina.saving.serialization import serialize_keras_object

    return serialize_keras_object(layer)


def deserialize(config, custom_objects=None):
    """Rebuild a layer from :func:`serialize`'s output (or a Keras-written config).

    Args:
        config: a config envelope dict.
        custom_objects: optional ``{name: class}`` for your own layers.

    Returns:
        The layer.

    Raises:
        ValueError: for a class that is neither Lamina's, registered, nor in
            ``custom_objects`` (named in the message), or a foreign ``module``.
    """
    from lamina.saving.serialization import deserialize_keras_object

    return deserialize_keras_object(config, custom_objects=custom_objects,
                                    families=("layers", "models"))
