"""The allowlist of classes a config may name, and user registration of custom objects.

Deserialisation resolves a ``class_name`` only through this module: Lamina's own public
classes (found by walking Lamina's modules once, at first use), objects registered with
:func:`register_serializable`, and ``custom_objects`` passed by the caller (directly or
through :class:`CustomObjectScope`). A ``module`` string read from a file is never
imported: it only selects which family (layers, optimizers, ...) to look in, and a module
outside Keras/Lamina is refused. This closes the Keras CVE-2025-1550 class of attacks.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_BUILTINS: dict[str, dict[str, object]] | None = None
_CUSTOM: dict[str, object] = {}
_scope = threading.local()

FAMILIES = ("layers", "models", "optimizers", "schedules", "losses", "metrics",
            "initializers", "regularizers", "constraints", "activations")

# Module prefixes (after "keras.", "keras.src." or "lamina.") -> families searched, in order.
_MODULE_FAMILIES = {
    "": ("models", "layers"),
    "layers": ("layers", "models"),
    "models": ("models", "layers"),
    "optimizers": ("optimizers", "schedules"),
    "optimizers.schedules": ("schedules",),
    "losses": ("losses",),
    "metrics": ("metrics",),
    "initializers": ("initializers",),
    "regularizers": ("regularizers",),
    "constraints": ("constraints",),
    "activations": ("activations",),
    "dtype_policies": ("dtype_policies",),
}
# Keras 2 names of model classes.
_MODEL_ALIASES = {"Model": "Functional"}


def _public_classes(module, base) -> dict[str, object]:
    found = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or not isinstance(obj, type) or not issubclass(obj, base):
            continue
        found.setdefault(obj.__name__, obj)
        found.setdefault(name, obj)
    return found


def _walk_lamina() -> dict[str, dict[str, object]]:
    """Lamina's public classes by family, keyed by their Keras class names."""
    from lamina import activations, constraints, initializers, regularizers
    from lamina import layers as layers_module
    from lamina import models as models_module
    from lamina import optimizers as optimizers_module
    from lamina.layers.layer import Layer
    from lamina.models.model import Model
    from lamina.optimizers import schedules

    table = {family: {} for family in FAMILIES}
    table["layers"] = _public_classes(layers_module, Layer)
    table["models"] = _public_classes(models_module, Model)
    table["models"].update({alias: table["models"][name]
                            for alias, name in _MODEL_ALIASES.items()})
    table["optimizers"] = _public_classes(optimizers_module, optimizers_module.Optimizer)
    table["schedules"] = _public_classes(schedules, schedules.LearningRateSchedule)
    table["initializers"] = _public_classes(initializers, initializers.Initializer)
    table["regularizers"] = _public_classes(regularizers, regularizers.Regularizer)
    table["constraints"] = _public_classes(constraints, constraints.Constraint)
    table["activations"] = {name: fn for name, fn in vars(activations).items()
                            if name in getattr(activations, "__all__", ()) and callable(fn)}
    try:
        from lamina import losses

        table["losses"] = _public_classes(losses, losses.Loss)
        table["losses"].update({name: fn for name, fn in vars(losses).items()
                                if not name.startswith("_") and callable(fn)
                                and not isinstance(fn, type) and name.islower()
                                and name not in ("get", "serialize", "deserialize")})
    except (ImportError, AttributeError):  # pragma: no cover - while losses land
        pass
    try:
        from lamina import metrics

        table["metrics"] = _public_classes(metrics, metrics.Metric)
    except (ImportError, AttributeError):  # pragma: no cover - while metrics land
        pass
    return table


def builtin_objects() -> dict[str, dict[str, object]]:
    """The families of Lamina's own serialisable objects (built on first use)."""
    global _BUILTINS
    with _lock:
        if _BUILTINS is None:
            _BUILTINS = _walk_lamina()
        return _BUILTINS


def families_for_module(module, class_name=None) -> tuple[str, ...]:
    """Which families a config's ``module`` points at.

    Args:
        module: the ``module`` string of a config (None for Keras 2 configs).
        class_name: used only for the error message.

    Returns:
        Family names to search, in order.

    Raises:
        ValueError: when ``module`` is not a Keras or Lamina module.
    """
    if module is None:
        return ("layers", "models")
    if isinstance(module, str):
        for prefix in ("keras.src.", "keras.", "lamina."):
            if module.startswith(prefix):
                rest = module[len(prefix):]
                break
        else:
            rest = "" if module in ("keras", "lamina") else None
        if rest is not None:
            for key in sorted(_MODULE_FAMILIES, key=len, reverse=True):
                if rest == key or (key and rest.startswith(key + ".")):
                    return _MODULE_FAMILIES[key]
            if rest.startswith("legacy") or rest.startswith("engine"):
                return ("layers", "models")
    raise ValueError(
        f"Refusing to deserialize class_name={class_name!r} from module={module!r}: only "
        "objects from Keras/Lamina modules (e.g. 'keras.layers', 'keras.optimizers') or "
        "registered custom objects are allowed. Lamina never imports a module named in a file.")


# -- custom objects -----------------------------------------------------------------------
def register_serializable(package: str = "Custom", name: str | None = None):
    """Decorator registering a custom class or function for deserialisation.

    The object is saved with ``registered_name="package>name"`` and found again by that
    name when a file is loaded, as Keras's ``register_keras_serializable`` does.

    Args:
        package: the package part of the registered name.
        name: the name part; the object's ``__name__`` by default.

    Returns:
        The decorator; it returns the object unchanged.

    Raises:
        ValueError: if ``package`` contains '>' or the name is already registered.

    Example:
        >>> import lamina
        >>> @lamina.saving.register_serializable(package="Docs")
        ... class Scale(lamina.layers.Layer):
        ...     def call(self, x):
        ...         return x * 2
        >>> lamina.saving.get_registered_name(Scale)
        'Docs>Scale'
    """
    if not isinstance(package, str) or ">" in package:
        raise ValueError(f"`package` must be a string without '>'. Received: package={package!r}")

    def decorator(obj):
        key = f"{package}>{name or obj.__name__}"
        if key in _CUSTOM and _CUSTOM[key] is not obj:
            existing = _CUSTOM[key]
            if getattr(existing, "__qualname__", None) != getattr(obj, "__qualname__", None):
                raise ValueError(f"{key!r} has already been registered to {existing!r}")
        if isinstance(obj, type) and not hasattr(obj, "get_config"):
            raise ValueError(f"Cannot register {obj!r}: classes must define `get_config()`.")
        _CUSTOM[key] = obj
        obj._lamina_registered_name = key
        return obj

    return decorator


register_keras_serializable = register_serializable


def get_registered_name(obj) -> str:
    """``"package>Name"`` for registered objects, else the class or function name."""
    target = obj if isinstance(obj, type) or callable(obj) and not hasattr(
        obj, "get_config") else type(obj)
    key = getattr(target, "_lamina_registered_name", None)
    if key is not None and _CUSTOM.get(key) is target:
        return key
    return target.__name__


def get_registered_object(name: str, custom_objects=None, module_objects=None):
    """Look ``name`` up in the active scopes, the registry, ``custom_objects``, then
    ``module_objects`` (Keras's order)."""
    for table in (*reversed(_scopes()), _CUSTOM, custom_objects or {}, module_objects or {}):
        if name in table:
            return table[name]
    return None


def get_custom_objects() -> dict:
    """The global registry of custom objects (``{"package>Name": obj}``); entries added
    to it directly (``get_custom_objects()["MyLayer"] = MyLayer``) resolve as well."""
    return _CUSTOM


def _scopes() -> list:
    if not hasattr(_scope, "stack"):
        _scope.stack = []
    return _scope.stack


class CustomObjectScope:
    """Make custom objects visible to deserialisation inside a ``with`` block.

    Args:
        custom_objects: dicts of ``{name: class_or_function}``.

    Example:
        >>> with CustomObjectScope({"MyLayer": object}):
        ...     get_registered_object("MyLayer") is object
        True
    """

    def __init__(self, *custom_objects) -> None:
        merged = {}
        for table in custom_objects:
            merged.update(table or {})
        self.custom_objects = merged

    def __enter__(self):
        _scopes().append(self.custom_objects)
        return self

    def __exit__(self, *exc_info) -> None:
        _scopes().pop()


custom_object_scope = CustomObjectScope


def resolve(class_name, module=None, registered_name=None, custom_objects=None,
            families=None):
    """Return the class (or function) a config names, from the allowlist only.

    Args:
        class_name: the config's ``class_name``.
        module: the config's ``module`` (checked, never imported).
        registered_name: the config's ``registered_name`` (custom objects).
        custom_objects: optional ``{name: object}`` from the caller.
        families: families to search when ``module`` is absent (Keras 2 configs).

    Returns:
        The class or function.

    Raises:
        ValueError: for a foreign module or a name that is not allowlisted; the message
            names the class.
    """
    if not isinstance(class_name, str):
        raise ValueError(f"`class_name` must be a string. Received: class_name={class_name!r}")
    for key in (registered_name, class_name):
        if isinstance(key, str):
            found = get_registered_object(key, custom_objects)
            if found is not None:
                return found
    searched = families if module is None and families else families_for_module(
        module, class_name)
    table = builtin_objects()
    for family in searched:
        found = table.get(family, {}).get(class_name)
        if found is not None:
            return found
    raise ValueError(
        f"Could not locate class '{class_name}' (module={module!r}). Lamina deserializes only "
        "its own classes and registered custom objects: decorate custom classes with "
        "`@lamina.saving.register_serializable()` or pass them in `custom_objects`.")
