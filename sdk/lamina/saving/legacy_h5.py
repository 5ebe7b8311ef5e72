"""Legacy ``.h5`` model files (Keras 2 / tf.keras layout, still written by Keras 3).

Root attributes ``keras_version``, ``backend``, ``model_config`` (JSON of
``{"class_name", "config"}``) and ``training_config`` (compile arguments with
``optimizer_config``); group ``model_weights`` with attribute ``layer_names`` and one
group per layer whose attribute ``weight_names`` lists its datasets; group
``optimizer_weights``. Weights are matched to layers by order (layers that have
weights), as Keras does. Files from Keras 2 (``dense/kernel:0``) and Keras 3
(``sequential/dense/kernel``) are both read. Weight-only ``.h5`` files have the same
layout at the root.
"""

from __future__ import annotations

import json

import numpy as np

from lamina.saving import h5_store
from lamina.saving.file_utils import atomic_path

_HEADER_LIMIT = 64512


def _legacy_layer_config(config):
    """Keras's legacy form of model configs: layer entries without module/registered_name."""
    if isinstance(config, dict):
        layers = config.get("layers")
        if isinstance(layers, list):
            config = dict(config, layers=[_legacy_entry(x) for x in layers])
    return config


def _legacy_entry(entry):
    if not isinstance(entry, dict):
        return entry
    out = {k: v for k, v in entry.items()
           if k not in ("module", "registered_name", "build_config", "compile_config")}
    out["config"] = _legacy_layer_config(out.get("config"))
    from lamina import layers

    # Keras's legacy files name a class by its Python name (GroupedQueryAttention), not
    # by the export name its Keras 3 configs use (GroupQueryAttention).
    cls = getattr(layers, str(out.get("class_name")), None)
    if isinstance(cls, type) and vars(cls).get("_keras_export_name") == out["class_name"]:
        out["class_name"] = cls.__name__
    return out


def _strip_envelope(value):
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        return {"class_name": value["class_name"], "config": value["config"]}
    if isinstance(value, list):
        return [_strip_envelope(v) for v in value]
    if isinstance(value, dict):
        return {k: _strip_envelope(v) for k, v in value.items()}
    return value


def _loss_objects(loss):
    """Loss names as class configs: Keras 3.15's legacy loader fails on ``"mse"`` strings."""
    if isinstance(loss, list):
        return [_loss_objects(v) for v in loss]
    if isinstance(loss, dict) and "class_name" not in loss:
        return {k: _loss_objects(v) for k, v in loss.items()}
    if not isinstance(loss, str):
        return loss
    from lamina import losses

    try:
        target = losses.get(loss)
    except ValueError:
        return loss
    for obj in vars(losses).values():
        if isinstance(obj, type) and issubclass(obj, losses.Loss) and obj is not losses.Loss:
            try:
                instance = obj()
            except TypeError:
                continue
            if instance.name == getattr(target, "__name__", None):
                return {"class_name": type(instance).__name__, "config": instance.get_config()}
    return loss


def _save_attributes(group, name: str, values: list) -> None:
    data = np.asarray([v.encode("utf8") for v in values], dtype=object) if values else \
        np.asarray([], dtype=np.float64)
    if sum(len(v) for v in values) + 16 * len(values) < _HEADER_LIMIT:
        group.attrs[name] = data.astype("S") if values else data
        return
    chunks = max(1, int(np.ceil(sum(len(v) + 16 for v in values) / _HEADER_LIMIT)) + 1)
    for i, part in enumerate(np.array_split(np.asarray(values, dtype=object), chunks)):
        group.attrs[f"{name}{i}"] = np.asarray([v.encode("utf8") for v in part], dtype="S")


def _load_attributes(group, name: str) -> list:
    def text(items):
        return [v.decode("utf8") if hasattr(v, "decode") else str(v) for v in items]

    if name in group.attrs:
        return text(group.attrs[name])
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out.extend(text(group.attrs[f"{name}{i}"]))
        i += 1
    return out


def _weights(layer) -> list:
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _unique_names(variables) -> list:
    names, seen = [], {}
    for v in variables:
        name = str(getattr(v, "path", None) or v.name)
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _save_subset(group, variables) -> None:
    names = _unique_names(variables)
    _save_attributes(group, "weight_names", names)
    for name, variable in zip(names, variables):
        group.create_dataset(name, data=np.asarray(variable.data))


def save_weights_to_group(group, model) -> None:
    """Write ``model``'s weights into ``group`` in the legacy layout."""
    from lamina.saving.serialization import KERAS_VERSION

    _save_attributes(group, "layer_names", [layer.name for layer in model.layers])
    group.attrs["backend"] = b"numpy"
    group.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
    for layer in sorted(model.layers, key=lambda la: la.name):
        _save_subset(group.create_group(layer.name), _weights(layer))
    _save_subset(group.create_group("top_level_model_weights"),
                 h5_store.own_variables(model))


def save_legacy_h5(model, filepath, overwrite: bool = True, include_optimizer: bool = True):
    """Write ``model`` to a legacy ``.h5`` file atomically."""
    import h5py

    from lamina.saving.serialization import KERAS_VERSION, serialize_keras_object

    config = serialize_keras_object(model)
    model_config = {"class_name": config["class_name"],
                    "config": _legacy_layer_config(config["config"])}
    with atomic_path(filepath, overwrite) as tmp:
        with h5py.File(tmp, "w") as h5file:
            h5file.attrs["keras_version"] = KERAS_VERSION
            h5file.attrs["backend"] = "numpy"
            h5file.attrs["model_config"] = json.dumps(model_config)
            compiled = config.get("compile_config")
            if include_optimizer and compiled:
                training = {k: _strip_envelope(v) for k, v in compiled.items()
                            if k != "optimizer"}
                training["loss"] = _loss_objects(training.get("loss"))
                training["optimizer_config"] = _strip_envelope(compiled["optimizer"])
                h5file.attrs["training_config"] = json.dumps(training)
            save_weights_to_group(h5file.create_group("model_weights"), model)
            if include_optimizer and compiled:
                group = h5file.create_group("optimizer_weights")
                _save_subset(group, model.optimizer.variables)


def _read_subset(group) -> list:
    names = _load_attributes(group, "weight_names")
    return [h5_store.safe_read(group, name) for name in names]


def load_weights_from_group(group, model, skip_mismatch: bool = False) -> None:
    """Assign weights from a legacy ``model_weights`` group, matching layers by order."""
    layers = [layer for layer in model.layers if _weights(layer)]
    names = []
    for name in _load_attributes(group, "layer_names"):
        layer_group = h5_store.safe_group(group, name)
        if layer_group is None:
            raise ValueError(f"Layer group {name!r} listed in layer_names is missing.")
        if _load_attributes(layer_group, "weight_names"):
            names.append(name)
    if len(names) != len(layers):
        raise ValueError(
            "Layer count mismatch when loading weights from file. Model expected "
            f"{len(layers)} layers, found {len(names)} saved layers.")
    for k, (name, layer) in enumerate(zip(names, layers)):
        variables = _weights(layer)
        values = _read_subset(h5_store.safe_group(group, name))
        if len(values) != len(variables):
            raise ValueError(
                f"Weight count mismatch for layer #{k} (named {layer.name} in the current "
                f"model, {name} in the save file). Layer expects {len(variables)} weight(s). "
                f"Received {len(values)} saved weight(s)")
        shapes_ok = all(v.shape == tuple(np.shape(a)) for v, a in zip(variables, values))
        if not shapes_ok:
            if skip_mismatch:
                continue
            raise ValueError(
                f"Shape mismatch in layer #{k} (named {layer.name}): expected "
                f"{[v.shape for v in variables]}, received {[np.shape(a) for a in values]}")
        for variable, value in zip(variables, values):
            variable.assign(np.asarray(value).astype(variable.data.dtype, copy=False))


def load_legacy_h5(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002
    """Load a model from a legacy ``.h5`` file (Keras 2 or Keras 3 written)."""
    from lamina.saving.serialization import compile_from_config, deserialize_keras_object

    with h5_store.open_h5(filepath, repr(str(filepath))) as h5file:
        raw = h5file.attrs.get("model_config")
        if raw is None:
            raise ValueError(f"No model config found in {str(filepath)!r}: it holds weights "
                             "only; build the model and call `load_weights`.")
        model_config = _json_attr(raw, "model_config")
        model = deserialize_keras_object(model_config, custom_objects=custom_objects,
                                         safe_mode=safe_mode, families=("models", "layers"))
        weights = h5_store.safe_group(h5file, "model_weights")
        load_weights_from_group(weights if weights is not None else h5file, model)
        training = h5file.attrs.get("training_config")
        if compile and training is not None:
            compile_from_config(model, _json_attr(training, "training_config"), custom_objects)
            group = h5_store.safe_group(h5file, "optimizer_weights")
            if group is not None:
                values = _read_subset(group)
                optimizer = model.optimizer
                if not optimizer.built and len(values) > len(optimizer.variables):
                    optimizer.build(model.trainable_weights)
                variables = optimizer.variables
                if len(values) == len(variables) and all(
                        v.shape == tuple(np.shape(a)) for v, a in zip(variables, values)):
                    for variable, value in zip(variables, values):
                        variable.assign(np.asarray(value).astype(variable.data.dtype))
    return model


def load_legacy_weights(model, filepath, skip_mismatch: bool = False) -> None:
    """Load weights from a legacy ``.h5`` (full model or weights-only)."""
    with h5_store.open_h5(filepath, repr(str(filepath))) as h5file:
        group = h5_store.safe_group(h5file, "model_weights")
        load_weights_from_group(group if group is not None else h5file, model, skip_mismatch)


def _json_attr(raw, name: str):
    if isinstance(raw, bytes):
        raw = raw.decode("utf8")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"The {name} attribute is not valid JSON ({exc}).") from exc
