"""Model and job checks run before anything is queued.

Two stages:

1. :func:`estimate_cost` walks the model's JSON config without building
   anything: it refuses Lambda layers, foreign ``module`` values, custom
   ``registered_name`` objects and, from layer hyper-parameters and the shapes
   it can infer, a lower bound of the parameter count — so ``Dense(10**9)`` is
   refused before a single weight is allocated.
2. :func:`validate_model` then builds the model through Lamina's safe
   deserialiser (an allowlist; Lambda refused) and checks the exact parameter
   count, bytes and layer count against the limits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from lamina_service.config import Limits
from lamina_service.errors import InvalidInput, LimitExceeded

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
FORBIDDEN_CLASSES = frozenset({"Lambda", "TFSMLayer"})
FORBIDDEN_KEYS = frozenset({"function", "__lambda__", "__passive_serialization__"})
#: Layers whose shape effect is known; used only when Lamina is not importable.
KNOWN_LAYERS = frozenset({
    "InputLayer", "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Conv1D", "Conv2D",
    "Conv3D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "BatchNormalization", "LayerNormalization", "Embedding", "LSTM",
    "GRU", "SimpleRNN", "Add", "Concatenate", "Multiply", "Average", "ReLU", "Softmax",
    "LeakyReLU", "ZeroPadding2D", "UpSampling2D", "SpatialDropout1D", "SpatialDropout2D",
    "GaussianNoise", "Rescaling", "Normalization", "Bidirectional", "TimeDistributed",
    "Sequential", "Functional", "Model", "Permute", "RepeatVector", "Cropping2D",
})
_RNN_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
_SHAPE_KEEPING = frozenset({
    "Activation", "Dropout", "ReLU", "Softmax", "LeakyReLU", "GaussianNoise", "Rescaling",
    "SpatialDropout1D", "SpatialDropout2D", "BatchNormalization", "LayerNormalization",
    "Normalization",
})


@dataclass(frozen=True)
class ModelCost:
    """What a job costs, as far as can be told before running it.

    Attributes:
        params: parameter count (exact when Lamina built the model).
        bytes: float32 weight bytes.
        layers: number of layers (nested models included).
        flops_per_step: rough estimate, 6 * params * batch_size.
        exact: True when the counts come from the built model.
    """

    params: int
    bytes: int
    layers: int
    flops_per_step: int
    exact: bool


Shape = tuple  # without the batch axis; None entries are unknown


def _ints(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return tuple(value)
    return (1,) * rank


def _positive(config: dict, key: str, where: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(f"{key} must be a positive integer; received {key}={value!r}",
                           field=f"{where}.{key}")
    return value


def _layer(cls: str, cfg: dict, shape: Shape | None, where: str) -> tuple[int, Shape | None]:
    """Return (lower bound of parameters, output shape) of one layer."""
    last = shape[-1] if shape and isinstance(shape[-1], int) else None
    if cls == "Dense":
        units = _positive(cfg, "units", where)
        use_bias = cfg.get("use_bias", True) is not False
        out = (*shape[:-1], units) if shape else None
        return (last or 1) * units + (units if use_bias else 0), out
    if cls in ("Conv1D", "Conv2D", "Conv3D"):
        rank = int(cls[4])
        filters = _positive(cfg, "filters", where)
        kernel = _ints(cfg.get("kernel_size", 1), rank)
        strides = _ints(cfg.get("strides", 1), rank)
        params = math.prod(kernel) * (last or 1) * filters + filters
        if shape and len(shape) == rank + 1:
            same = cfg.get("padding", "valid") == "same"
            spatial = tuple(
                None if not isinstance(n, int) else
                (-(-n // s) if same else max(0, (n - k) // s + 1))
                for n, k, s in zip(shape[:-1], kernel, strides)
            )
            return params, (*spatial, filters)
        return params, None
    if cls == "Embedding":
        dims = _positive(cfg, "input_dim", where) * _positive(cfg, "output_dim", where)
        return dims, (*shape, cfg["output_dim"]) if shape else None
    if cls in _RNN_GATES:
        units = _positive(cfg, "units", where)
        gates = _RNN_GATES[cls]
        params = gates * (units * ((last or 1) + units) + units)
        seq = cfg.get("return_sequences") and shape
        return params, ((shape[0], units) if seq else (units,))
    if cls == "Flatten":
        known = shape is not None and all(isinstance(n, int) for n in shape)
        return 0, (math.prod(shape),) if known else None
    if cls in _SHAPE_KEEPING:
        norm = {"BatchNormalization": 4, "LayerNormalization": 2}.get(cls, 0)
        return norm * (last or 0), shape
    return 0, None


def _input_shape(cfg: dict) -> Shape | None:
    for key in ("batch_shape", "batch_input_shape"):
        value = cfg.get(key)
        if isinstance(value, list) and value:
            return tuple(value[1:])
    return None


def _inbound_shape(layer: dict, outputs: dict[str, Shape | None]) -> Shape | None:
    nodes = layer.get("inbound_nodes") or []
    stack = list(nodes)
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                tensor = item.get("config") or {}
                shape = tensor.get("shape")
                if isinstance(shape, list) and shape:
                    return tuple(shape[1:])
                history = tensor.get("keras_history") or [None]
                return outputs.get(history[0])
            stack.extend(item.values())
        elif isinstance(item, list):
            if item and isinstance(item[0], str):  # Keras 2: [name, node, tensor, kwargs]
                return outputs.get(item[0])
            stack.extend(item)
    return None


def _scan(value: Any, where: str, lamina_present: bool) -> None:
    """Refuse Lambda, foreign modules and custom objects anywhere in the config."""
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls in FORBIDDEN_CLASSES:
            raise InvalidInput(f"{cls} layers are not accepted (they run arbitrary code); "
                               f"received class_name={cls!r}", field=f"{where}.class_name")
        module = value.get("module")
        if module is not None and not (
            isinstance(module, str) and module.split(".")[0] in ("keras", "lamina")
        ):
            raise InvalidInput(f"only keras/lamina objects are accepted; received "
                               f"module={str(module)[:80]!r}", field=f"{where}.module")
        registered = value.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            raise InvalidInput(f"custom objects are not accepted; received "
                               f"registered_name={registered[:80]!r}",
                               field=f"{where}.registered_name")
        for key, item in value.items():
            if key in FORBIDDEN_KEYS:
                raise InvalidInput(f"key {key!r} is not accepted in a model config",
                                   field=f"{where}.{key}")
            _scan(item, f"{where}.{key}", lamina_present)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan(item, f"{where}[{index}]", lamina_present)


def _walk_model(model: dict, where: str, limits: Limits, strict_names: bool,
                shape: Shape | None = None) -> tuple[int, int, Shape | None]:
    cls = model.get("class_name")
    cfg = model.get("config")
    if cls not in MODEL_CLASSES or not isinstance(cfg, dict):
        raise InvalidInput(f"model.class_name must be one of {sorted(MODEL_CLASSES)} with a "
                           f"config object; received class_name={cls!r}",
                           field=f"{where}.class_name")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers:
        raise InvalidInput("a model needs a non-empty list of layers", field=f"{where}.layers")
    functional = cls != "Sequential"
    params, count, outputs = 0, 0, {}
    shape = shape or _input_shape(cfg)
    for index, layer in enumerate(layers):
        here = f"{where}.config.layers[{index}]"
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
            raise InvalidInput("each layer must be an object with a class_name", field=here)
        lcls, lcfg = layer["class_name"], layer.get("config") or {}
        if lcls not in (KNOWN_LAYERS if strict_names else _lamina_layer_names()):
            raise InvalidInput(f"unknown layer class; received class_name={lcls[:80]!r}",
                               field=f"{here}.class_name")
        if functional:
            shape = _input_shape(lcfg) if lcls == "InputLayer" else _inbound_shape(layer, outputs)
        elif index == 0 and lcls != "InputLayer":
            shape = _input_shape(lcfg) or shape
        if lcls in MODEL_CLASSES:
            inner, inner_count, shape = _walk_model(layer, here, limits, strict_names, shape)
        elif lcls == "InputLayer":
            inner, inner_count, shape = 0, 1, _input_shape(lcfg) or shape
        else:
            inner, shape = _layer(lcls, lcfg, shape, f"{here}.config")
            inner_count = 1
        if inner > limits.max_params:
            raise LimitExceeded(
                f"layer {lcfg.get('name', index)!r} ({lcls}) needs at least {inner} "
                f"parameters; the limit max_params is {limits.max_params}", field=here)
        params, count = params + inner, count + inner_count
        outputs[lcfg.get("name")] = shape
    return params, count, shape


def _lamina_layer_names() -> set[str]:
    """Every layer and model class name Lamina's registry resolves (Lamina is present)."""
    from lamina.saving.registry import builtin_objects

    objects = builtin_objects()
    return set(objects.get("layers", {})) | set(objects.get("models", {})) | MODEL_CLASSES


def _check(params: int, layers: int, limits: Limits) -> None:
    if params > limits.max_params:
        raise LimitExceeded(f"the model has {'at least ' if params else ''}{params} parameters; "
                            f"the limit max_params is {limits.max_params}", field="model")
    if params * 4 > limits.max_model_bytes:
        raise LimitExceeded(f"the model's weights take {params * 4} bytes; the limit "
                            f"max_model_bytes is {limits.max_model_bytes}", field="model")
    if layers > limits.max_layers:
        raise LimitExceeded(f"the model has {layers} layers; the limit max_layers is "
                            f"{limits.max_layers}", field="model")


_PROBE = {"class_name": "Sequential", "config": {"name": "probe", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 1]}},
    {"class_name": "Dense", "config": {"name": "d", "units": 1}}]}}


@functools.lru_cache(maxsize=1)
def _lamina_builder():
    """Lamina's ``model_from_config``, or None while the library is not importable.

    The library is optional for the API process (and was written in parallel with
    it); without it, the pre-check alone decides, with a static allowlist of layers.
    """
    try:
        from lamina.models import model_from_config

        model_from_config(_PROBE, safe_mode=True)
    except ImportError:
        return None
    except Exception:  # noqa: BLE001 - a probe failure other than a missing module is fine
        pass
    return model_from_config


def estimate_cost(config: dict, limits: Limits, batch_size: int = 32) -> ModelCost:
    """Check a model config cheaply, without building it (see the module docstring).

    Raises:
        InvalidInput: forbidden content or malformed layers.
        LimitExceeded: the lower bound already exceeds a limit.
    """
    strict = _lamina_builder() is None
    _scan(config, "model", not strict)
    params, layers, _ = _walk_model(config, "model", limits, strict)
    _check(params, layers, limits)
    return ModelCost(params, params * 4, layers, 6 * params * batch_size, exact=False)


def config_digest(config: dict) -> str:
    """sha256 of the config's canonical JSON (key order and spacing do not matter)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


class _Counts:
    """Exact (params, layers) of built models by config digest: a bounded LRU memo.

    Building is the expensive part of a submission and a service sees the same model
    many times (sweeps, retries, resubmissions); the counts do not depend on the limits,
    which are checked again on every use.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, digest: str) -> tuple[int, int] | None:
        with self._lock:
            found = self._items.get(digest)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(digest)
            self.hits += 1
            return found

    def put(self, digest: str, counts: tuple[int, int]) -> None:
        with self._lock:
            self._items[digest] = counts
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


COUNTS = _Counts()


def _build_and_count(build, config: dict) -> tuple[int, int]:
    try:
        model = build(config, safe_mode=True)
    except (ValueError, TypeError, KeyError, NotImplementedError, AttributeError) as exc:
        raise InvalidInput(f"the model config was rejected: {exc}", field="model") from exc
    return int(model.count_params()), len(model.layers)


def validate_model(config: dict, limits: Limits, batch_size: int = 32) -> ModelCost:
    """Pre-check, then build the model through Lamina's safe deserialiser and count it.

    A config seen before (same :func:`config_digest`) is not checked or built again:
    its exact counts are remembered (:data:`COUNTS`) and checked against ``limits``.

    Raises:
        InvalidInput: forbidden content, unknown classes, bad shapes.
        LimitExceeded: parameters, bytes or layers over the limits.
    """
    build = _lamina_builder()
    try:
        digest = config_digest(config)
    except ValueError as exc:  # NaN/inf numbers are not JSON
        raise InvalidInput(f"the model config is not plain JSON: {exc}", field="model") from exc
    counts = COUNTS.get(digest) if build is not None else None
    if counts is None:
        estimate = estimate_cost(config, limits, batch_size)
        if build is None:
            return estimate
        counts = _build_and_count(build, config)
        COUNTS.put(digest, counts)
    params, layers = counts
    _check(params, layers, limits)
    return ModelCost(params, params * 4, layers, 6 * params * batch_size, exact=True)
