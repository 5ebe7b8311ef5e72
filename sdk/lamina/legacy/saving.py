"""Keras 2's object serialization: ``{"class_name": ..., "config": {...}}`` without modules.

Files and configs written by Keras 2 (``tf.keras``) nest objects this way, with
``"__passive_serialization__": True`` on nested entries. Deserialization resolves class
names only among registered Lamina classes and ``custom_objects`` (never by import),
so a config from outside can name nothing else.
"""

from __future__ import annotations

import inspect

from lamina.saving import registry

_PASSIVE = "__passive_serialization__"


def serialize_keras_object(instance):
    """Serialize ``instance`` in Keras 2's format.

    Args:
        instance: an object with ``get_config`` (layers, losses, optimizers, ...), a
            registered function, or None.

    Returns:
        None, a function's registered name, or ``{"class_name", "config"}`` whose
        nested serializable entries carry ``"__passive_serialization__": True``.

    Raises:
        ValueError: for an object that has neither ``get_config`` nor a name.
    """
    instance = inspect.unwrap(instance) if callable(instance) else instance
    if instance is None:
        return None
    if hasattr(instance, "get_config"):
        config = {}
        for key, item in instance.get_config().items():
            if isinstance(item, str):
                config[key] = item
                continue
            try:
                nested = serialize_keras_object(item)
            except ValueError:
                config[key] = item
                continue
            if isinstance(nested, dict) and not isinstance(item, dict):
                nested[_PASSIVE] = True
            config[key] = nested
        return {"class_name": registry.get_registered_name(type(instance)), "config": config}
    if hasattr(instance, "__name__"):
        return registry.get_registered_name(instance)
    if isinstance(instance, (int, float, bool, list, tuple, dict)):
        raise ValueError(f"Cannot serialize {instance!r}: it is a plain value.")
    raise ValueError(f"Cannot serialize {instance!r} because it doesn't implement "
                     "`get_config()`.")


def deserialize_keras_object(identifier, module_objects=None, custom_objects=None,
                             printable_module_name="object"):
    """Rebuild an object from Keras 2's format (or return a registered function by name).

    Args:
        identifier: a config dict ``{"class_name", "config"}``, a name, or None.
        module_objects: extra name -> class/function mapping searched after
            ``custom_objects`` and the registered objects.
        custom_objects: name -> class/function mapping searched first.
        printable_module_name: the kind of object, for error messages.

    Returns:
        The object (an instance for a class config; the function for a name).

    Raises:
        ValueError: for an unknown name (naming it) or a malformed config.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        if "class_name" not in identifier or "config" not in identifier:
            raise ValueError(f"Improper config format for {identifier}. Expecting python dict "
                             "contains `class_name` and `config` as keys")
        cls = _lookup(identifier["class_name"], module_objects, custom_objects,
                      printable_module_name)
        config = identifier["config"]
        if isinstance(config, dict):
            config = {k: (deserialize_keras_object(v, module_objects, custom_objects,
                                                   "config_item")
                          if isinstance(v, dict) and v.get(_PASSIVE) else v)
                      for k, v in config.items()}
        if hasattr(cls, "from_config"):
            params = inspect.signature(cls.from_config).parameters
            if "custom_objects" in params:
                return cls.from_config(config, custom_objects=dict(custom_objects or {}))
            return cls.from_config(config)
        return cls(**config)
    if isinstance(identifier, str):
        obj = _lookup(identifier, module_objects, custom_objects, printable_module_name)
        return obj
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret serialized {printable_module_name}: {identifier!r}")


def _lookup(name, module_objects, custom_objects, printable_module_name):
    obj = registry.get_registered_object(name, custom_objects=custom_objects,
                                         module_objects=module_objects)
    if obj is None:
        for family in registry.builtin_objects().values():
            if name in family:
                obj = family[name]
                break
    if obj is None:
        raise ValueError(
            f"Unknown {printable_module_name}: '{name}'. Please ensure you are using a "
            "`keras.utils.custom_object_scope` and that this object is included in the "
            "scope.")
    return obj


__all__ = ["deserialize_keras_object", "serialize_keras_object"]
