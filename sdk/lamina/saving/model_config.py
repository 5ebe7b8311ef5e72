"""Configs of functional and Sequential models in Keras 3's format (Keras 2's is read too).

A functional config lists every layer with its ``inbound_nodes``: one entry per call of
the layer inside this model (shared layers have several), each
``{"args": [...], "kwargs": {...}}`` with tensors written as
``{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history":
[layer_name, node_index, tensor_index]}}``. Node indices count only this model's calls.
"""

from __future__ import annotations


def _keras_tensor(tensor, node_index: dict) -> dict:
    layer = tensor.node.operation
    return {"class_name": "__keras_tensor__", "config": {
        "shape": list(tensor.shape), "dtype": tensor.dtype,
        "keras_history": [layer.name, node_index[id(tensor.node)], tensor.index]}}


def _history(tensor, node_index: dict) -> list:
    return [tensor.node.operation.name, node_index[id(tensor.node)], tensor.index]


def _map_struct(fn, struct):
    from lamina.layers.symbolic import KerasTensor

    if isinstance(struct, KerasTensor):
        return fn(struct)
    if isinstance(struct, dict):
        return {k: _map_struct(fn, v) for k, v in struct.items()}
    if isinstance(struct, (list, tuple)):
        return [_map_struct(fn, v) for v in struct]
    from lamina.saving.serialization import serialize_keras_object

    return serialize_keras_object(struct)


def functional_config(model) -> dict:
    """``Functional.get_config()``: name, trainable, layers, input_layers, output_layers.

    Args:
        model: a functional model (``Model(inputs, outputs)``).

    Returns:
        The config dict Keras 3 writes.
    """
    from lamina.saving.serialization import serialize_keras_object

    if not hasattr(model, "_nodes"):
        raise NotImplementedError(
            f"Model '{model.name}' is a subclassed model: its architecture is Python code, "
            "so it has no config. Override `get_config()` (and `from_config()`) to save it.")
    own = [t.node for t in model.inputs] + list(model._nodes)
    own_ids = {id(n) for n in own}
    node_index = {}
    for layer in model.layers:
        count = 0
        for node in layer._inbound_nodes:
            if id(node) in own_ids:
                node_index[id(node)] = count
                count += 1
    layers = []
    for layer in model.layers:
        entry = serialize_keras_object(layer)
        entry["name"] = layer.name
        nodes = [n for n in layer._inbound_nodes if id(n) in own_ids and n.input_tensors]
        entry["inbound_nodes"] = [{
            "args": _map_struct(lambda t: _keras_tensor(t, node_index), list(n.call_args)),
            "kwargs": _map_struct(lambda t: _keras_tensor(t, node_index), n.call_kwargs),
        } for n in nodes]
        layers.append(entry)
    return {
        "name": model.name, "trainable": model.trainable, "layers": layers,
        "input_layers": _map_struct(lambda t: _history(t, node_index), model._inputs_struct),
        "output_layers": _map_struct(lambda t: _history(t, node_index), model._outputs_struct),
    }


class _NotReady(Exception):
    """A node's inputs do not exist yet; retry after other layers are called."""


def functional_from_config(config: dict, custom_objects=None):
    """Rebuild a functional model from :func:`functional_config` output (or Keras 2's).

    Args:
        config: the functional config.
        custom_objects: optional ``{name: object}`` for custom layers.

    Returns:
        A :class:`~lamina.models.Functional`.

    Raises:
        ValueError: malformed configs, unknown layers, graphs with loops or missing nodes.
    """
    from lamina.layers.input_layer import InputLayer
    from lamina.layers.layer import Layer
    from lamina.models.functional import Functional
    from lamina.saving.serialization import deserialize_keras_object

    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("A functional model config needs a `layers` list. Received keys: "
                         f"{sorted(config) if isinstance(config, dict) else type(config)}")
    created, outputs, pending, legacy = {}, {}, {}, False
    for data in config["layers"]:
        if not isinstance(data, dict):
            raise ValueError(f"Each layer config must be a dict. Received: {data!r}")
        layer = deserialize_keras_object(data, custom_objects=custom_objects,
                                         families=("layers", "models"))
        if not isinstance(layer, Layer):
            raise ValueError(f"Expected a layer in the functional config, got {type(layer)}.")
        name = data.get("name") or layer.name
        if name in created:
            raise ValueError(f"Duplicate layer name {name!r} in the functional config.")
        created[name] = layer
        nodes = data.get("inbound_nodes") or []
        legacy = legacy or "module" not in data or any(isinstance(n, list) for n in nodes)
        if isinstance(layer, InputLayer):
            outputs[name] = [layer.output_tensor]
            nodes = []
        pending[name] = list(nodes)

    def tensor(name, node, index):
        if name not in created:
            raise ValueError(f"Invalid functional model config: layer {name!r} is used as an "
                             "input but is not in `layers`.")
        made = outputs.get(name, [])
        if not isinstance(node, int) or node >= len(made):
            raise _NotReady(name)
        from lamina.layers.symbolic import flatten

        flat = flatten(made[node])
        if not isinstance(index, int) or not 0 <= index < len(flat):
            raise ValueError(f"Invalid tensor index {index!r} of layer {name!r}.")
        return flat[index]

    while any(pending.values()):
        progress = False
        for name in created:
            while pending[name]:
                try:
                    args, kwargs = _node_arguments(pending[name][0], tensor, custom_objects)
                except _NotReady:
                    break
                outputs.setdefault(name, []).append(created[name](*args, **kwargs))
                pending[name].pop(0)
                progress = True
        if not progress:
            raise ValueError(
                "Invalid functional model configuration: the graph has loops or disconnected "
                f"nodes; unresolved: { {k: len(v) for k, v in pending.items() if v} }")

    def map_tensors(value):
        if isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str):
            return tensor(*value[:3])
        if isinstance(value, dict):
            return {k: map_tensors(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [map_tensors(v) for v in value]
        raise ValueError(f"Invalid input_layers/output_layers entry: {value!r}")

    try:
        inputs = map_tensors(config.get("input_layers"))
        outputs_struct = map_tensors(config.get("output_layers"))
    except _NotReady as exc:
        raise ValueError(f"Invalid functional model configuration: layer {exc} has no "
                         "such node.") from exc
    if legacy:
        inputs = inputs[0] if isinstance(inputs, list) and len(inputs) == 1 else inputs
        if isinstance(outputs_struct, list) and len(outputs_struct) == 1:
            outputs_struct = outputs_struct[0]
    return Functional(inputs, outputs_struct, name=config.get("name"),
                      trainable=config.get("trainable", True))


def _node_arguments(node, tensor, custom_objects):
    """Positional and keyword arguments of one recorded call (Keras 3 or Keras 2 format)."""
    from lamina.saving.serialization import deserialize_keras_object

    if isinstance(node, dict):
        def restore(value):
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                history = (value.get("config") or {}).get("keras_history")
                if not isinstance(history, list) or len(history) != 3:
                    raise ValueError(f"Invalid keras_history: {history!r}")
                return tensor(*history)
            if isinstance(value, dict) and "class_name" in value:
                return deserialize_keras_object(value, custom_objects=custom_objects)
            if isinstance(value, dict):
                return {k: restore(v) for k, v in value.items()}
            if isinstance(value, list):
                return [restore(v) for v in value]
            return value

        return restore(list(node.get("args") or [])), restore(dict(node.get("kwargs") or {}))
    if isinstance(node, list):
        inputs, kwargs = [], {}
        for entry in node:
            if not isinstance(entry, list) or len(entry) not in (3, 4):
                raise ValueError(f"Cannot deserialize the model: invalid node data {entry!r}")
            inputs.append(tensor(*entry[:3]))
            if len(entry) == 4 and isinstance(entry[3], dict):
                kwargs = dict(entry[3])
        return [inputs[0] if len(inputs) == 1 else inputs], kwargs
    raise ValueError(f"Cannot deserialize the model: invalid node data {node!r}")


def sequential_config(model) -> dict:
    """``Sequential.get_config()``: name, trainable, dtype, layers (InputLayer first)."""
    from lamina.saving.serialization import dtype_policy, serialize_keras_object

    layers = [serialize_keras_object(layer) for layer in model.layers]
    if model._input_layer is not None:
        layers.insert(0, serialize_keras_object(model._input_layer))
    config = {"name": model.name, "trainable": model.trainable,
              "dtype": dtype_policy(model.dtype), "layers": layers}
    if model.built and model._input_layer is not None:
        config["build_input_shape"] = list(model._input_layer.batch_shape)
    return config


def sequential_from_config(config, custom_objects=None):
    """Rebuild a ``Sequential`` from :func:`sequential_config` output (or Keras 2's)."""
    from lamina.models.sequential import Sequential
    from lamina.saving.serialization import deserialize_keras_object, dtype_name

    if isinstance(config, list):  # Keras 2.0-era: just the list of layers
        config = {"layers": config}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("A Sequential config needs a `layers` list.")
    model = Sequential(name=config.get("name"), trainable=config.get("trainable", True),
                       dtype=dtype_name(config.get("dtype")))
    for data in config["layers"]:
        layer = deserialize_keras_object(data, custom_objects=custom_objects,
                                         families=("layers", "models"))
        model.add(layer, rebuild=False)
    shape = config.get("build_input_shape")
    if model._input_layer is None and isinstance(shape, list) and model.layers and not (
            model.layers[0]._batch_input_shape):
        model.build(tuple(shape))
    else:
        model._maybe_rebuild()
    return model
