"""``ObjectFamily``: the ``get``/``serialize``/``deserialize`` trio of a family of objects.

Initializers, regularizers and constraints resolve identifiers the same way: None, a
name from the family's table, a Keras config dict, a class of the family, an instance
or any callable.
"""

from __future__ import annotations


class ObjectFamily:
    """Identifier resolution for one family.

    Args:
        kind: the family's singular name, used in error messages ("constraint").
        module: the ``module`` written in serialised configs ("keras.constraints").
        objects: name -> class, including lowercase aliases.
        base: the family's base class.
    """

    def __init__(self, kind: str, module: str, objects: dict, base: type) -> None:
        self.kind, self.module, self.objects, self.base = kind, module, objects, base

    def serialize(self, obj):
        """The Keras config dict of ``obj`` (None for None)."""
        if obj is None:
            return None
        return {"module": self.module, "class_name": type(obj).__name__,
                "config": obj.get_config(), "registered_name": None}

    def deserialize(self, config: dict, custom_objects=None):
        """Recreate an object from :meth:`serialize` output.

        Raises:
            ValueError: for a class name outside the family and ``custom_objects``.
        """
        table = {**self.objects, **(custom_objects or {})}
        name = config.get("class_name")
        if name not in table:
            raise ValueError(f"Could not interpret {self.kind} identifier: {name!r}")
        return table[name].from_config(dict(config.get("config") or {}))

    def get(self, identifier):
        """Resolve None, a name, a config dict, a class, an instance or a callable.

        Raises:
            ValueError: if the identifier cannot be interpreted.
        """
        if identifier is None:
            return None
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        if isinstance(identifier, str):
            cls = self.objects.get(identifier)
            if cls is None:
                raise ValueError(f"Could not interpret {self.kind} identifier: {identifier!r}")
            return cls()
        if isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier()
        if callable(identifier):
            return identifier
        raise ValueError(f"Could not interpret {self.kind} identifier: {identifier!r}")
