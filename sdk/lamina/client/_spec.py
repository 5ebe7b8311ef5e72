"""Turn a compiled model, fit arguments and callbacks into the API's job body.

The API accepts a closed schema (``JobCreate`` in ``lamina_service.api.schemas``):
the model's Keras JSON, losses/metrics by name, an optimizer by class name with
scalar hyper-parameters and callbacks from an allowlist. Anything that cannot be
expressed that way is refused here, naming it, instead of being silently dropped.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

ALLOWED_CALLBACKS = ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
                     "LearningRateScheduler", "TerminateOnNaN", "CSVLogger")
#: Callbacks that only render locally; job.wait() plays their part.
LOCAL_ONLY = ("History", "ProgbarLogger")

_CALLBACK_FIELDS = {
    "EarlyStopping": ("monitor", "min_delta", "patience", "mode", "baseline",
                      "restore_best_weights", "start_from_epoch", "verbose"),
    "ModelCheckpoint": ("monitor", "save_best_only", "save_weights_only", "mode", "save_freq",
                        "verbose"),
    "ReduceLROnPlateau": ("monitor", "factor", "patience", "mode", "min_delta", "cooldown",
                          "min_lr", "verbose"),
    "TerminateOnNaN": (),
    "CSVLogger": ("separator", "append"),
}
_ATTRIBUTE = {("CSVLogger", "separator"): "sep"}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def model_config(model) -> dict[str, Any]:
    """The model's Keras 3 JSON config (without ``compile_config``: it is sent apart)."""
    config = json.loads(model.to_json())
    config.pop("compile_config", None)
    return config


def _name_of(item: Any, family: str) -> str:
    """A loss or metric as the name the service resolves, refusing lossy conversions."""
    if isinstance(item, str):
        return item
    if callable(item) and not hasattr(item, "get_config"):
        return item.__name__
    cls = type(item)
    try:
        default = cls().get_config()
    except TypeError:
        default = None
    config = dict(item.get_config())
    if default is not None:
        config.pop("name", None)
        default.pop("name", None)
    if default is None or config != default:
        raise ValueError(
            f"A remote job takes {family} by name only; {cls.__name__} with non-default "
            f"arguments cannot be sent. Received: {family}={cls.__name__}"
            f"({', '.join(f'{k}={v!r}' for k, v in config.items())}). Compile with a name "
            f"(e.g. {family}='mse') or the default arguments.")
    return cls.__name__


def _names(value: Any, family: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _names(v, family) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_names(v, family) for v in value]
    return _name_of(value, family)


def compile_config(model) -> dict[str, Any]:
    """The ``compile`` part of the job: optimizer, loss, metrics, loss_weights.

    Raises:
        ValueError: the model is not compiled, or uses something the API cannot take.
    """
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError("Client.fit needs a compiled model: call model.compile(...) first.")
    raw = getattr(model, "_compile_config", None) or {}
    if raw.get("loss") is None:
        raise ValueError("Client.fit needs a loss: compile the model with loss=...")
    optimizer = model.optimizer
    settings: dict[str, Any] = {}
    for key, value in optimizer.get_config().items():
        value = _plain(value)
        if isinstance(value, (dict, list)):
            raise ValueError(
                f"A remote job takes scalar optimizer arguments only. Received: "
                f"{type(optimizer).__name__}({key}={value!r}). For a learning-rate schedule "
                "use the LearningRateScheduler callback with a schedule dict.")
        if key != "name":
            settings[key] = value
    out: dict[str, Any] = {
        "optimizer": {"class_name": type(optimizer).__name__, "config": settings},
        "loss": _names(raw["loss"], "loss"),
        "metrics": _names(raw.get("metrics"), "metrics") or [],
    }
    if raw.get("loss_weights") is not None:
        out["loss_weights"] = raw["loss_weights"]
    if raw.get("weighted_metrics"):
        raise ValueError("A remote job does not take weighted_metrics; compile without them.")
    return out


def callback_configs(callbacks) -> list[dict[str, Any]]:
    """Allowlisted callbacks as ``{class_name, config}`` (dicts are passed through).

    Raises:
        ValueError: a callback that cannot run remotely (naming it and the allowlist).
    """
    out = []
    for callback in callbacks or []:
        if isinstance(callback, dict):
            out.append(callback)
            continue
        name = type(callback).__name__
        if name in LOCAL_ONLY:
            continue
        if name == "LearningRateScheduler":
            raise ValueError(
                "LearningRateScheduler takes a Python function, which cannot be sent; pass "
                "a dict instead, e.g. {'class_name': 'LearningRateScheduler', 'config': "
                "{'schedule': {'type': 'exponential', 'initial_learning_rate': 1e-3, "
                "'decay_rate': 0.9}}}")
        if name not in _CALLBACK_FIELDS:
            raise ValueError(
                f"Callback {name} cannot run remotely; the service runs "
                f"{', '.join(ALLOWED_CALLBACKS)} (or pass their {{class_name, config}} dicts).")
        config = {}
        for field in _CALLBACK_FIELDS[name]:
            value = getattr(callback, _ATTRIBUTE.get((name, field), field), None)
            if value is not None:
                config[field] = _plain(value)
        out.append({"class_name": name, "config": config})
    return out


def _named(value, names: list[str], prefix: str) -> dict[str, np.ndarray]:
    if isinstance(value, dict):
        return {f"{prefix}_{k}": np.asarray(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return {prefix: np.asarray(value[0])}
        if len(names) != len(value):
            raise ValueError(f"{prefix} has {len(value)} arrays but the model has "
                             f"{len(names)} {'inputs' if prefix == 'x' else 'outputs'}")
        return {f"{prefix}_{n}": np.asarray(v) for n, v in zip(names, value)}
    return {prefix: np.asarray(value)}


def arrays_of(model, x, y) -> dict[str, np.ndarray]:
    """The arrays of one dataset, named as the API expects (``x``, ``y`` or ``x_<name>``)."""
    if x is None or y is None:
        raise ValueError("Client.fit needs x and y arrays (datasets are uploaded as .npz).")
    inputs = [t.name for t in getattr(model, "inputs", None) or []]
    outputs = list(getattr(model, "output_names", None) or [])
    arrays = {**_named(x, inputs, "x"), **_named(y, outputs, "y")}
    lengths = {name: (a.shape[0] if a.ndim else None) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1 or None in lengths.values():
        raise ValueError(f"x and y must have the same number of samples; received "
                         f"{', '.join(f'{k}: {v}' for k, v in lengths.items())}")
    for name, array in arrays.items():
        if array.dtype.kind not in "fiub":
            raise ValueError(f"{name} must be numeric; received dtype {array.dtype}")
    return arrays


def initial_weights(model, initial_weights) -> np.ndarray | None:
    """The flat float32 vector of the weights a remote ``fit`` starts from, or None.

    ``"model"``: the model's current weights (as Keras's ``fit`` continues from them;
    None for a model not built yet); a list of arrays shaped like ``model.weights``;
    None: the service initialises the model (seeded by ``seed``).
    """
    if initial_weights is None:
        return None
    if isinstance(initial_weights, str):
        if initial_weights != "model":
            raise ValueError("initial_weights must be 'model', None or a list of arrays; "
                             f"received initial_weights={initial_weights!r}")
        if not getattr(model, "built", False) or not model.weights:
            return None
        arrays = model.get_weights()
    else:
        arrays = [np.asarray(a) for a in initial_weights]
        shapes = [tuple(w.shape) for w in model.weights]
        if [a.shape for a in arrays] != shapes:
            raise ValueError(f"initial_weights must match the model's weights {shapes}; "
                             f"received shapes {[a.shape for a in arrays]}")
    if not arrays:
        return None
    return np.concatenate([np.asarray(a, np.float32).reshape(-1) for a in arrays])


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A deterministic ``.npz`` (fixed timestamps), so equal arrays give equal bytes.

    ``np.savez`` stamps the current time into the zip; the service content-addresses
    uploads, so the same data must always serialise to the same bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]),
                                          allow_pickle=False)
    return buffer.getvalue()


def steps_per_epoch(samples: int, batch_size: int, validation_split: float) -> int:
    """Training batches per epoch, as local ``fit`` counts them."""
    train = int(samples * (1.0 - validation_split)) if validation_split else samples
    return max(1, -(-train // batch_size))
