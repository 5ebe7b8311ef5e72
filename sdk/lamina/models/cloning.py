"""``clone_model``: the same architecture with new layers (and fresh weights)."""

from __future__ import annotations

from lamina.layers.input_layer import Input, InputLayer
from lamina.layers.layer import Layer
from lamina.layers.symbolic import KerasTensor, flatten, map_structure
from lamina.models.functional import Functional
from lamina.models.sequential import Sequential


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, **kwargs):
    """Clone a Sequential or Functional model: new layers, new weights, same graph.

    Args:
        model: a ``Sequential`` or functional ``Model`` (a subclassed model is rebuilt
            from its config, without ``clone_function``/``call_function``/``input_tensors``).
        input_tensors: ``KerasTensor``s (the model's input structure) to build the clone on;
            new ``Input``s by default.
        clone_function: ``layer -> layer`` making each layer of the clone; default
            ``layer.__class__.from_config(layer.get_config())``. A layer used several times
            is cloned once, so sharing is kept.
        call_function: ``fn(layer, *args, **kwargs)`` calling each cloned layer in a
            functional model (to insert layers around it); default ``layer(*args, **kwargs)``.
        recursive: clone nested Sequential/functional models with ``clone_model`` and the
            same functions, instead of passing them to ``clone_function`` whole.

    Returns:
        The new model (compiled like the original when it was compiled).

    Raises:
        ValueError: for unexpected keyword arguments, or arguments the model's kind
            does not support (as Keras's errors say).
    """
    cache = kwargs.pop("cache", None)
    if kwargs:
        raise ValueError(f"Unexpected keyword argument(s): {tuple(kwargs)}")
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                "`call_function` argument is not supported with Sequential models. In a "
                "Sequential model, layers aren't called at model-construction time (they're "
                "merely listed). Use `call_function` with Functional models only. Received "
                f"model of type '{type(model).__name__}', with call_function={call_function}")
        clone = _wrap(clone_function, None, recursive, cache)
        return _clone_sequential(model, clone, input_tensors)
    if isinstance(model, Functional):
        clone = _wrap(clone_function, call_function, recursive, cache)
        return _clone_functional(model, clone, input_tensors, call_function)
    if clone_function is not None or input_tensors is not None:
        raise ValueError(
            "Arguments `clone_function` and `input_tensors` are only supported for Sequential "
            f"models or Functional models. Received model of type '{type(model).__name__}', "
            f"with clone_function={clone_function} and input_tensors={input_tensors}")
    if call_function is not None:
        raise ValueError("Argument `call_function` is only supported for Functional models. "
                         f"Received model of type '{type(model).__name__}', with "
                         f"call_function={call_function}")
    return type(model).from_config(model.get_config())


def _wrap(clone_function, call_function, recursive, cache):
    """The clone function with Keras's layer-sharing cache and recursion into models."""
    if clone_function is None:
        def clone_function(layer):
            return layer.__class__.from_config(layer.get_config())
    if not callable(clone_function):
        raise ValueError("Expected `clone_function` argument to be a callable. Received: "
                         f"clone_function={clone_function!r}")
    cache = {} if cache is None else cache

    def wrapped(layer):
        if id(layer) in cache:
            return cache[id(layer)]
        if recursive and isinstance(layer, (Sequential, Functional)):
            clone = clone_model(layer, clone_function=clone_function,
                                call_function=call_function if isinstance(layer, Functional)
                                else None, recursive=True, cache=cache)
        else:
            clone = clone_function(layer)
        cache[id(layer)] = clone
        return clone

    return wrapped


def _compile_like(original, clone):
    if getattr(original, "compiled", False):
        clone.compile_from_config(original.get_compile_config())
    return clone


def _clone_sequential(model, clone_function, input_tensors):
    layers = [clone_function(layer) for layer in model.layers]
    ref = model._input_layer
    if input_tensors is not None:
        if isinstance(input_tensors, (list, tuple)):
            if len(input_tensors) != 1:
                raise ValueError("Argument `input_tensors` must contain a single tensor.")
            input_tensors = input_tensors[0]
        if not isinstance(input_tensors, KerasTensor):
            raise ValueError("Argument `input_tensors` must be a KerasTensor. Received invalid "
                             f"value: input_tensors={input_tensors!r}")
        layers = [input_tensors] + layers
    elif ref is not None:
        layers = [InputLayer(batch_shape=ref.batch_shape, dtype=ref.dtype, name=ref.name)] \
            + layers
    return _compile_like(model, Sequential(layers, name=model.name, trainable=model.trainable))


def _clone_functional(model, clone_function, input_tensors, call_function):
    if input_tensors is not None:
        flat = flatten(input_tensors)
        if not all(isinstance(t, KerasTensor) for t in flat):
            raise ValueError("All entries in `input_tensors` must be KerasTensors. Received "
                             f"invalid values: input_tensors={input_tensors!r}")
        if len(flat) != len(model.inputs):
            raise ValueError("`input_tensors` must have the same structure as model.input. "
                             f"Reference: {len(model.inputs)} inputs; received {len(flat)}.")
        new_inputs = input_tensors
    else:
        new_inputs = map_structure(
            lambda t: Input(batch_shape=t.shape, dtype=t.dtype, name=t.name),
            model._inputs_struct)
    values = {id(old): new for old, new in zip(model.inputs, flatten(new_inputs))}

    def lookup(t):
        return values[id(t)] if isinstance(t, KerasTensor) else t

    for node in model._nodes:
        args = map_structure(lookup, node.call_args)
        kwargs = map_structure(lookup, node.call_kwargs)
        operation = node.operation
        if not isinstance(operation, Layer):
            outputs = operation(*args, **kwargs)  # an op holds no weights: re-recorded
        else:
            layer = clone_function(operation)
            outputs = call_function(layer, *args, **kwargs) if call_function is not None \
                else layer(*args, **kwargs)
        for old, new in zip(flatten(node.outputs), flatten(outputs)):
            values[id(old)] = new
    new_outputs = map_structure(lambda t: values[id(t)], model._outputs_struct)
    clone = Functional(new_inputs, new_outputs, name=model.name, trainable=model.trainable)
    return _compile_like(model, clone)
