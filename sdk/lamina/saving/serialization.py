"""Keras 3 config envelopes: ``serialize_keras_object`` / ``deserialize_keras_object``.

Every object is written as ``{"module", "class_name", "config", "registered_name"}``
(plus ``build_config`` for built layers and ``compile_config`` for compiled models), the
way Keras 3.15 writes it, so Keras opens Lamina's configs. Reading also accepts the
Keras 2 dialect (no ``module``, ``batch_input_shape``, list-form ``inbound_nodes``).

Reading is safe by construction: classes come only from :mod:`lamina.saving.registry`,
a foreign ``module`` is refused, Lambda layers are refused under ``safe_mode`` (the
default), code is never unmarshalled, and sizes are capped (:mod:`lamina.saving.limits`)
before a weight is allocated.
"""

from __future__ import annotations

import contextlib
import inspect
import threading

import numpy as np

from lamina.config import is_unsafe_deserialization_enabled
from lamina.saving import limits, registry
from lamina.saving.compile_config import compile_config, compile_from_config  # noqa: F401
from lamina.saving.model_config import (  # noqa: F401 - re-exported for the model classes
    functional_config,
    functional_from_config,
    sequential_config,
    sequential_from_config,
)

#: The Keras version whose file layouts Lamina writes (``metadata.json``, legacy ``.h5``).
KERAS_VERSION = "3.15.1"

_state = threading.local()
# Keras-only constructor arguments that Lamina layers may not take; dropped when unused.
_IGNORABLE = {"quantization_config": None, "lora_rank": None, "lora_alpha": None,
              "synchronized": False, "renorm": False, "renorm_clipping": None,
              "renorm_momentum": 0.99, "input_axes": None, "output_axes": None,
              "optional": False, "ragged": False}


def dtype_policy(name: str) -> dict:
    """Keras 3's serialised ``DTypePolicy`` for a dtype name."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _family_modules():
    """(base class, Keras module) pairs, most specific first."""
    from lamina import constraints, initializers, regularizers
    from lamina.layers.layer import Layer
    from lamina.models.model import Model
    from lamina.optimizers.base import Optimizer
    from lamina.optimizers.schedules import LearningRateSchedule

    pairs = [(Model, "keras"), (Layer, "keras.layers"),
             (LearningRateSchedule, "keras.optimizers.schedules"),
             (Optimizer, "keras.optimizers"), (initializers.Initializer, "keras.initializers"),
             (regularizers.Regularizer, "keras.regularizers"),
             (constraints.Constraint, "keras.constraints")]
    try:
        from lamina import losses, metrics

        pairs += [(losses.Loss, "keras.losses"), (metrics.Metric, "keras.metrics")]
    except (ImportError, AttributeError):  # pragma: no cover - while they land
        pass
    return pairs


def _envelope_module(obj) -> tuple[str, str | None]:
    cls = type(obj)
    if "_keras_envelope" in vars(cls):  # (module, registered_name) Keras writes, e.g. FeatureSpace
        return cls._keras_envelope
    name = registry.get_registered_name(cls)
    if ">" in name:
        return cls.__module__, name
    if not cls.__module__.startswith("lamina."):
        return cls.__module__, cls.__name__
    if cls.__name__ == "Functional":
        return "keras.src.models.functional", "Functional"
    for base, module in _family_modules():
        if isinstance(obj, base):
            return module, None
    return "keras", None


def build_input_shape(layer):
    """The input shape a layer was built for, as Keras's ``build_config`` holds it."""
    from lamina.layers.symbolic import KerasTensor, map_structure

    if not getattr(layer, "built", False) or not getattr(layer, "_inbound_nodes", None):
        return None
    first = layer._inbound_nodes[0].call_args
    if not first:
        return None
    return map_structure(lambda t: list(t.shape) if isinstance(t, KerasTensor) else None,
                         first[0])


def serialize_keras_object(obj):
    """Serialise ``obj`` to plain JSON types in Keras 3's format.

    Args:
        obj: a layer, model, optimizer, loss, metric, initializer, ..., a function, an
            ndarray, or a structure of plain values.

    Returns:
        JSON-compatible data; objects become ``{"module", "class_name", "config",
        "registered_name", ...}`` envelopes.

    Raises:
        TypeError: for objects that cannot be serialised (e.g. a Lambda layer).
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__",
                "config": {"value": obj.tolist(), "dtype": obj.dtype.name}}
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): serialize_keras_object(v) for k, v in obj.items()}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return _serialize_function(obj)
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r} of type {type(obj).__name__}: it has no "
                        "`get_config()` method.")
    module, registered = _envelope_module(obj)
    config = serialize_keras_object(obj.get_config())
    from lamina.layers.layer import Layer

    if isinstance(obj, Layer):
        _keras_layer_config(obj, config)
    # A class Keras exports under another name (GroupedQueryAttention is written as
    # "GroupQueryAttention") says so in its own (not inherited) `_keras_export_name`.
    class_name = vars(type(obj)).get("_keras_export_name", type(obj).__name__)
    envelope = {"module": module, "class_name": class_name, "config": config,
                "registered_name": registered}
    if isinstance(obj, Layer) and getattr(obj, "built", False):
        from lamina.layers.input_layer import InputLayer
        from lamina.models.functional import Functional
        from lamina.models.sequential import Sequential

        if isinstance(obj, Sequential) and obj._input_layer is not None:
            envelope["build_config"] = {"input_shape": list(obj._input_layer.batch_shape)}
        elif isinstance(obj, Functional):
            envelope["build_config"] = {"input_shape": None}
        elif not isinstance(obj, InputLayer):
            shape = build_input_shape(obj)
            if shape is not None:
                envelope["build_config"] = {"input_shape": shape}
        if callable(getattr(obj, "get_build_config", None)):  # e.g. FeatureSpace
            envelope["build_config"] = obj.get_build_config()
    if getattr(obj, "_compiled", False) and getattr(obj, "optimizer", None) is not None:
        envelope["compile_config"] = compile_config(obj)
    return envelope


def _keras_layer_config(layer, config: dict) -> None:
    from lamina.layers.input_layer import InputLayer

    if isinstance(layer, InputLayer):
        config.setdefault("ragged", False)
        config.setdefault("optional", bool(getattr(layer, "optional", False)))
        return
    config.pop("batch_input_shape", None)  # Keras 3 puts the input shape on an InputLayer
    if isinstance(config.get("dtype"), str):
        config["dtype"] = dtype_policy(config["dtype"])


def _serialize_function(fn) -> dict:
    name = registry.get_registered_name(fn)
    if ">" in name:
        return {"module": fn.__module__, "class_name": "function", "config": name,
                "registered_name": name}
    module = fn.__module__ or ""
    family = "keras.losses" if ".losses" in module else "keras.activations" if (
        "activations" in module) else module
    return {"module": family, "class_name": "function", "config": fn.__name__,
            "registered_name": "function"}


# -- reading -------------------------------------------------------------------------------
@contextlib.contextmanager
def _options(safe_mode, compile):  # noqa: A002 - Keras's argument name
    previous = (getattr(_state, "safe_mode", None), getattr(_state, "compile", None))
    _state.safe_mode = safe_mode if previous[0] is None else previous[0]
    _state.compile = compile if previous[1] is None else previous[1]
    try:
        yield
    finally:
        _state.safe_mode, _state.compile = previous


def in_safe_mode() -> bool:
    """Whether the deserialisation running in this thread refuses Lambda layers."""
    if is_unsafe_deserialization_enabled():
        return False
    return getattr(_state, "safe_mode", None) is not False


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, compile=True,  # noqa: A002
                             families=None):
    """Rebuild an object from its serialised config, resolving classes by allowlist.

    Args:
        config: an envelope dict (Keras 3 or Keras 2 style), or plain data.
        custom_objects: optional ``{name: class_or_function}`` for custom objects.
        safe_mode: refuse Lambda layers (default). An enclosing call's setting wins.
        compile: apply a ``compile_config`` found in the config.
        families: registry families to search when the config has no ``module``.

    Returns:
        The object.

    Raises:
        ValueError: for a foreign module, an unknown class (named in the message), a
            Lambda layer under safe mode, or sizes over the cap.
    """
    outermost = getattr(_state, "safe_mode", None) is None
    with _options(bool(safe_mode), bool(compile)), limits.deserializing(), \
            registry.CustomObjectScope(custom_objects or {}):
        if outermost:
            check_config(config, custom_objects)
        return _deserialize(config, custom_objects, families)


def check_config(config, custom_objects=None, where="config", depth=0) -> None:
    """Refuse hostile content anywhere in a config before anything is created.

    Raises:
        ValueError: foreign modules, Lambda under safe mode, marshalled code, sizes.
    """
    if depth == 0:
        limits.check_config_sizes(config)
    if isinstance(config, dict):
        cls = config.get("class_name")
        if cls == "__lambda__" or "__lambda__" in config:
            raise ValueError(
                "Requested the deserialization of a Python lambda (marshalled bytecode at "
                f"{where}). Lamina never unmarshals code, whatever `safe_mode` says.")
        names = [config.get("registered_name"), cls]
        if cls == "function":
            names.append(config.get("config"))
        if isinstance(cls, str) and "module" in config and not any(
                isinstance(n, str) and registry.get_registered_object(n, custom_objects)
                for n in names):
            registry.families_for_module(config["module"], cls)
        if cls == "Lambda" and in_safe_mode():
            name = (config.get("config") or {}).get("name")
            raise ValueError(
                f"Refusing to deserialize the Lambda layer {name!r} at {where}: a Lambda layer "
                "holds Python code, and loading it runs that code. This is refused with "
                "safe_mode=True (the default); pass safe_mode=False only for files you trust.")
        for key, value in config.items():
            check_config(value, custom_objects, f"{where}.{key}", depth + 1)
    elif isinstance(config, list):
        for index, value in enumerate(config):
            check_config(value, custom_objects, f"{where}[{index}]", depth + 1)


def _deserialize(config, custom_objects, families=None):
    if isinstance(config, list):
        return [_deserialize(x, custom_objects) for x in config]
    if not isinstance(config, dict) or "class_name" not in config:
        return config
    cls_name = config["class_name"]
    inner = config.get("config")
    if cls_name == "__numpy__":
        return _numpy(inner)
    if cls_name == "__tuple__":
        return tuple(_deserialize(x, custom_objects) for x in inner.get("value", []))
    if cls_name == "__keras_tensor__":
        raise ValueError("A `__keras_tensor__` can only appear inside a functional model's "
                         "`inbound_nodes`.")
    if cls_name in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
        return dtype_name(config)
    if cls_name == "function":
        return _resolve_function(config, custom_objects)
    cls = registry.resolve(cls_name, config.get("module"), config.get("registered_name"),
                           custom_objects, families)
    if not isinstance(inner, dict):
        inner = {}
    inner = _clean_config(cls, inner, custom_objects)
    if cls_name == "Lambda":
        inner = _lambda_config(inner, custom_objects)
    if not isinstance(cls, type):
        return cls
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        obj = cls.from_config(inner, custom_objects=custom_objects)
    else:
        obj = cls.from_config(inner)
    _apply_build_config(obj, config.get("build_config"))
    compile_cfg = config.get("compile_config")
    if compile_cfg and getattr(_state, "compile", True) and hasattr(obj, "compile"):
        compile_from_config(obj, compile_cfg, custom_objects)
    return obj


def dtype_name(value):
    """The dtype name of a ``DTypePolicy`` dict, a string, or None."""
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if value is not None and not isinstance(value, str):
        raise ValueError(f"Invalid dtype in config: {value!r}")
    return value


def _numpy(inner):
    dtype = np.dtype((inner or {}).get("dtype", "float32"))
    if dtype.kind not in "biuf":
        raise ValueError(f"Refusing a __numpy__ value of dtype {dtype.name!r}: only numeric "
                         "arrays are read from configs.")
    return np.asarray(inner.get("value"), dtype=dtype)


def _resolve_function(config, custom_objects):
    name = config.get("config")
    registered = config.get("registered_name")
    for key in (registered, name):
        if isinstance(key, str):
            found = registry.get_registered_object(key, custom_objects)
            if found is not None:
                return found
    families = registry.families_for_module(config.get("module"), name)
    table = registry.builtin_objects()
    for family in (*families, "activations", "losses"):
        found = table.get(family, {}).get(name)
        if found is not None and not isinstance(found, type):
            return found
    raise ValueError(f"Could not locate function '{name}'. Register it with "
                     "`@lamina.saving.register_serializable()` or pass it in `custom_objects`.")


def _accepted_kwargs(cls) -> set | None:
    """Constructor argument names of ``cls`` (None when any keyword is accepted)."""
    from lamina.layers.layer import _BASE_KWARGS, Layer

    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in (p.KEYWORD_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
        if klass is Layer:
            return names | set(_BASE_KWARGS)
    return None


def _clean_config(cls, inner: dict, custom_objects) -> dict:
    """Normalise a Keras config for a Lamina constructor (dtype policies, Keras-only keys)."""
    inner = {k: v for k, v in inner.items() if k != "shared_object_id"}
    if "dtype" in inner:
        inner["dtype"] = dtype_name(inner["dtype"])
    if not isinstance(cls, type) or "layers" in inner:
        return inner
    accepted = _accepted_kwargs(cls)
    for key in list(inner):
        value = inner[key]
        if isinstance(value, dict) and "class_name" in value and (
                "module" in value or value.get("registered_name")):
            inner[key] = _nested(value, custom_objects)
        if accepted is not None and key not in accepted and key in _IGNORABLE and (
                inner[key] is None or inner[key] == _IGNORABLE[key]):
            del inner[key]
        elif accepted is not None and key not in accepted and inner[key] is None:
            del inner[key]
    return inner


def _nested(value: dict, custom_objects):
    """A nested envelope (initializer, regularizer, ...): an object if custom, else cleaned."""
    name, module, registered = value["class_name"], value.get("module"), value.get(
        "registered_name")
    if name in ("DTypePolicy", "FloatDTypePolicy", "function", "__numpy__"):
        return _deserialize(value, custom_objects)
    cls = registry.resolve(name, module, registered, custom_objects,
                           families=registry.FAMILIES)
    if not (getattr(cls, "__module__", "") or "").startswith("lamina."):
        return _deserialize(value, custom_objects)
    cleaned = dict(value)
    if isinstance(value.get("config"), dict):
        cleaned["config"] = _clean_config(cls, value["config"], custom_objects)
    return cleaned


def _lambda_config(inner: dict, custom_objects) -> dict:
    function = inner.get("function")
    if callable(function):  # already resolved from custom objects / the registry
        return inner
    if isinstance(function, dict) and function.get("class_name") == "function":
        inner["function"] = _resolve_function(function, custom_objects)
        return inner
    if isinstance(function, str):
        found = registry.get_registered_object(function, custom_objects)
        if found is not None:
            inner["function"] = found
            return inner
    raise ValueError(
        f"Cannot deserialize the Lambda layer {inner.get('name')!r}: its function is not a "
        "registered function. Lamina never unmarshals Python code; register the function "
        "with `@lamina.saving.register_serializable()` or pass it in `custom_objects`.")


def _apply_build_config(obj, build_config) -> None:
    from lamina.layers.layer import Layer
    from lamina.models.model import Model

    if not isinstance(obj, Layer) or isinstance(obj, Model) or obj.built:
        return
    if build_config and callable(getattr(obj, "build_from_config", None)):
        obj.build_from_config(build_config)
        return
    shape = (build_config or {}).get("input_shape")
    if shape is None:
        return

    def to_tuple(s):
        if isinstance(s, list) and s and all(isinstance(d, list) for d in s):
            return [to_tuple(d) for d in s]
        return tuple(s)

    obj.build(to_tuple(shape))
    obj.built = True
