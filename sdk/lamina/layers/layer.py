"""``Layer``: the base of every layer and model, with Keras's lifecycle.

``__init__`` stores validated hyper-parameters, ``build(input_shape)`` creates
weights through :meth:`Layer.add_weight`, ``call(inputs, training=None)`` computes
with :mod:`lamina.ops`, ``get_config`` returns every constructor argument.
Calling a layer on symbolic tensors (from :func:`lamina.Input`) records a node
of the functional graph; calling it on data computes.
"""

from __future__ import annotations

import contextlib
import inspect
import threading

import numpy as np

from lamina import ops
from lamina.backend.config import floatx, standardize_dtype
from lamina.backend.foreign_tensors import reject_graph_tensor
from lamina.backend.scopes import current_path, get_stateless_scope
from lamina.backend.tensor import Tensor, Variable
from lamina.layers.input_spec import assert_input_compatibility
from lamina.layers.symbolic import (
    KerasTensor,
    Node,
    flatten,
    infer_call_output_shapes,
    infer_output_shapes,
    map_structure,
)
from lamina.layers.symbolic_masks import attach_symbolic_masks, has_symbolic_mask
from lamina.metrics.base import Metric
from lamina.ops.operation import Operation

_context = threading.local()
_dtype_names: dict = {}


def _leaves(structure) -> list:
    return [structure] if isinstance(structure, Tensor) else flatten(structure)


def _name(dtype: np.dtype) -> str:
    """``dtype.name``, memoised: numpy builds the name in Python on every access."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = _dtype_names[dtype] = dtype.name
    return name


def in_training_context():
    """The ``training`` flag of the enclosing model call, or None."""
    return getattr(_context, "training", None)


@contextlib.contextmanager
def training_context(training):
    previous = getattr(_context, "training", None)
    _context.training = training
    try:
        yield
    finally:
        _context.training = previous


_BASE_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size",
                "input_length")


class Layer(Operation):
    """Base class of all layers: an ``Operation`` with weights, built on first call.

    Args:
        trainable: whether the layer's weights are updated by training.
        name: unique name; ``snake_case(ClassName)`` plus a counter by default.
        dtype: the layer's float type; ``floatx()`` by default.
        activity_regularizer: optional regularizer applied to the layer's output.
        autocast: cast floating inputs to the layer's dtype (True, as Keras); with False
            they keep their own float type.
        input_shape: (deprecated in Keras 3 but accepted) shape of the input without
            the batch dimension, for the first layer of a ``Sequential``.
    """

    def __init__(self, *, activity_regularizer=None, trainable=True, dtype=None, autocast=True,
                 name=None, **kwargs):
        unknown = set(kwargs) - set(_BASE_KWARGS)
        if unknown:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                f"{ {k: kwargs[k] for k in sorted(unknown)} }"
            )
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError(
                f"Argument `name` must be a string without '/'. Received: name={name!r}")
        self._layers = []
        self._own_variables = []
        self._losses = []
        Operation.__init__(self, name=name)
        self.built = False
        self._trainable = bool(trainable)
        self.autocast = bool(autocast)
        self.input_spec = getattr(self, "input_spec", None)
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name", None)
        if dtype is not None and not isinstance(dtype, str | np.dtype | type):
            dtype = getattr(dtype, "compute_dtype", dtype)  # a DTypePolicy
        elif isinstance(dtype, str) and dtype.startswith("mixed_"):
            from lamina import dtype_policies  # a mixed policy's name computes in float32

            dtype = dtype_policies.DTypePolicy(dtype).compute_dtype
        self.dtype = standardize_dtype(dtype) if dtype is not None else floatx()
        self.supports_masking = getattr(self, "supports_masking", False)
        from lamina import regularizers

        self.activity_regularizer = regularizers.get(activity_regularizer)
        batch_shape = kwargs.get("batch_input_shape")
        if batch_shape is None and kwargs.get("input_shape") is not None:
            batch_shape = (kwargs.get("batch_size"), *tuple(kwargs["input_shape"]))
        if batch_shape is None and kwargs.get("input_dim") is not None:
            batch_shape = (kwargs.get("batch_size"), int(kwargs["input_dim"]))
        self._batch_input_shape = tuple(batch_shape) if batch_shape is not None else None
        sig = inspect.signature(self.call).parameters
        self._call_has_training = "training" in sig
        self._call_has_mask = "mask" in sig

    # -- attribute tracking ----------------------------------------------------------
    def __setattr__(self, name, value):
        if isinstance(value, Metric) and hasattr(self, "_layers"):
            # Keras 3 lists metrics held as attributes in `model.metrics` (reset per epoch).
            tracked = self.__dict__.setdefault("_metrics", [])
            if all(value is not m for m in tracked):
                tracked.append(value)
        if name != "_layers" and isinstance(value, Layer) and hasattr(self, "_layers"):
            if all(value is not layer for layer in self._layers):
                self._layers.append(value)
        elif (isinstance(value, (list, tuple)) and hasattr(self, "_layers")
              and not name.startswith("_")):
            for item in value:
                if isinstance(item, Layer) and all(item is not la for la in self._layers):
                    self._layers.append(item)
        object.__setattr__(self, name, value)

    def _tracked_metrics(self) -> list:
        """``Metric`` objects held as attributes of this layer and its sub-layers."""
        out = list(self.__dict__.get("_metrics", ()))
        for layer in self._flat_layers():
            layer._gather_metrics(out)
        return out

    def _gather_metrics(self, out) -> None:
        # One walk (fit's logs ask every step): the same list as merging each sub-layer's
        # own list into its parent's, first occurrences kept.
        for m in self.__dict__.get("_metrics", ()):
            if all(m is not o for o in out):
                out.append(m)
        for layer in self._flat_layers():
            layer._gather_metrics(out)

    # -- weights ---------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None, autocast=True,
                   aggregation="mean", overwrite_with_gradient=False):
        """Create a weight of this layer.

        Args:
            shape: tuple of ints; ``()`` for a scalar.
            initializer: an initializer name, instance or callable ``(shape, dtype)``;
                ``glorot_uniform`` for floats by default (``zeros`` otherwise).
            dtype: dtype name; the layer's dtype by default.
            trainable: whether optimizers update it.
            regularizer: optional regularizer added to ``layer.losses``.
            constraint: optional constraint applied after each optimizer update.
            name: short name (``kernel``, ``bias``, ...).

        Returns:
            The new :class:`~lamina.backend.Variable`.
        """
        from lamina import constraints, initializers, regularizers
        from lamina.saving.limits import check_weight_shape

        shape = () if shape is None else tuple(int(d) for d in shape)
        check_weight_shape(self.name, name, shape)  # before allocating (untrusted configs)
        dtype = standardize_dtype(dtype or self.dtype)
        if initializer is None:
            floating = np.issubdtype(np.dtype(dtype), np.floating)
            initializer = "glorot_uniform" if floating else "zeros"
        init = initializers.get(initializer)
        value = init(shape, dtype=dtype)
        variable = Variable(value, trainable=trainable, name=name or "variable", dtype=dtype)
        scope = current_path()
        variable.path = f"{scope}/{self.name}/{variable.name}" if scope \
            else f"{self.name}/{variable.name}"
        variable.regularizer = regularizers.get(regularizer)
        variable.constraint = constraints.get(constraint)
        self._own_variables.append(variable)
        return variable

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value

    def _flat_layers(self):
        return self._layers

    @property
    def weights(self) -> list:
        """Own trainable, own non-trainable, then sub-layers' weights, de-duplicated."""
        out, seen = [], set()
        own = [v for v in self._own_variables if v.trainable] + [
            v for v in self._own_variables if not v.trainable]
        for v in own:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        for layer in self._flat_layers():
            for v in layer.weights:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def variables(self) -> list:
        return self.weights

    @property
    def trainable_weights(self) -> list:
        """Own trainable weights, then the sub-layers' (in order), de-duplicated."""
        if not self.trainable:
            return []
        out, seen = [], set()
        self._gather_trainable(out, seen)
        return out

    def _gather_trainable(self, out, seen) -> None:
        # One walk with one `seen` set (fit asks every step): the same list as
        # de-duplicating each sub-layer's own list, then the parent's.
        for v in self._own_variables:
            if v.trainable and id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        for layer in self._flat_layers():
            if type(layer).trainable_weights is not _TRAINABLE_WEIGHTS:  # overridden
                for v in layer.trainable_weights:
                    if id(v) not in seen:
                        seen.add(id(v))
                        out.append(v)
            elif layer.trainable:
                layer._gather_trainable(out, seen)

    @property
    def non_trainable_weights(self) -> list:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list:
        """The values of ``weights`` as a list of ndarray copies."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights) -> None:
        """Set ``weights`` from a list of arrays, checking count and shapes."""
        params = self.weights
        if len(params) != len(weights):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list "
                f"of length {len(weights)}, but the layer was expecting {len(params)} weights."
            )
        for variable, value in zip(params, weights):
            value = np.asarray(value)
            if value.shape != variable.shape:
                raise ValueError(
                    f"Layer {self.name} weight shape {variable.shape} is not compatible with "
                    f"provided weight shape {value.shape}."
                )
        for variable, value in zip(params, weights):
            variable.assign(value)

    def count_params(self) -> int:
        """Total number of scalars in ``weights``."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer "
                "isn't built. You can build it manually via: `layer.build(input_shape)`.")
        return int(sum(v.size for v in self.weights))

    @property
    def losses(self) -> list:
        """Losses added during the last call plus weight-regularisation terms."""
        out = list(self._losses)
        for layer in self._flat_layers():
            out.extend(layer.losses)
        for v in self._own_variables:
            if v.regularizer is not None and v.trainable:
                out.append(v.regularizer(v))
        return out

    def add_loss(self, loss) -> None:
        """Add a scalar loss term (cleared at the start of every top-level call); inside a
        ``StatelessScope(collect_losses=True)`` the scope collects it instead."""
        scope = get_stateless_scope()
        if scope is not None and scope.collect_losses:
            scope.add_loss(loss)
            return
        self._losses.append(loss)

    def _clear_losses(self) -> None:
        if self._losses:  # most calls add none: no new list (nor __setattr__) per call
            self._losses = []
        for layer in self._flat_layers():
            layer._clear_losses()

    # -- lifecycle -------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create weights for inputs of ``input_shape``; stateless layers do nothing."""
        self.built = True

    def call(self, inputs, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement call().")

    def compute_mask(self, inputs, mask=None):
        return mask if self.supports_masking else None

    def _maybe_build(self, inputs) -> None:
        if self.built:
            return
        shapes = map_structure(lambda t: tuple(t.shape), inputs)
        if isinstance(shapes, list) and len(shapes) == 1 and not isinstance(inputs, list):
            shapes = shapes[0]
        self.build(shapes)
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, inputs, self.name)
        if not isinstance(inputs, Tensor) and any(
                isinstance(t, KerasTensor) for t in flatten(inputs)):
            return self._symbolic_call(inputs, *args, **kwargs)
        if getattr(_context, "in_call", False):
            return self._eager_call(inputs, *args, **kwargs)
        # A top-level call starts afresh: `losses` holds this call's `add_loss` terms only.
        self._clear_losses()
        _context.in_call = True
        try:
            return self._eager_call(inputs, *args, **kwargs)
        finally:
            _context.in_call = False

    def _eager_call(self, inputs, *args, **kwargs):
        inputs = self._convert_input(inputs) if isinstance(inputs, Tensor) \
            else map_structure(self._convert_input, inputs)
        self._maybe_build(inputs)
        if self._call_has_training:
            if kwargs.get("training") is None:
                kwargs["training"] = in_training_context()
        else:
            kwargs.pop("training", None)
        mask = kwargs.get("mask")
        if self._call_has_mask and mask is None:
            masks = [getattr(t, "_keras_mask", None) for t in _leaves(inputs)]
            if any(m is not None for m in masks):
                mask = masks[0] if not isinstance(inputs, (list, tuple)) else masks
                kwargs["mask"] = mask
        elif not self._call_has_mask:
            kwargs.pop("mask", None)
        if self._layers and self._call_has_training:
            with training_context(kwargs["training"]):
                outputs = self.call(inputs, *args, **kwargs)
        else:
            outputs = self.call(inputs, *args, **kwargs)
        if self.activity_regularizer is not None:
            for out in flatten(outputs):
                self.add_loss(ops.divide(self.activity_regularizer(out),
                                         np.asarray(out.shape[0], dtype=out.data.dtype)))
        if self.supports_masking or type(self).compute_mask is not Layer.compute_mask:
            if mask is None:
                masks = [getattr(t, "_keras_mask", None) for t in _leaves(inputs)]
                mask = masks[0] if len(masks) == 1 else (masks if any(
                    m is not None for m in masks) else None)
            out_mask = self.compute_mask(inputs, mask)
            if out_mask is not None:
                for out, m in zip(flatten(outputs), flatten(out_mask)
                                  if isinstance(out_mask, (list, tuple)) else
                                  [out_mask] * len(flatten(outputs))):
                    if isinstance(out, Tensor) and m is not None:
                        out._keras_mask = m.data if isinstance(m, Tensor) else m
        return outputs

    def _convert_input(self, x):
        if isinstance(x, Tensor):
            if self.autocast and x.data.dtype.kind == "f" and _name(x.data.dtype) != self.dtype:
                return ops.cast(x, self.dtype)
            return x
        if x is None or isinstance(x, (str, bool)):
            return x
        reject_graph_tensor(x, f"layer {self.name!r}")
        array = np.asarray(x)
        if self.autocast and array.dtype.kind == "f" and _name(array.dtype) != self.dtype:
            array = array.astype(self.dtype)
        return Tensor(array)

    # -- symbolic (functional) calls -----------------------------------------------------
    def compute_output_shape(self, input_shape):
        """Shape of the output for ``input_shape``; found by a dummy call by default."""
        return infer_output_shapes(self, input_shape)

    def _symbolic_call(self, inputs, *args, **kwargs):
        shapes = map_structure(lambda t: tuple(t.shape), inputs)
        if not self.built:
            self.build(shapes)
            self.built = True
        if (type(self).compute_output_shape is Layer.compute_output_shape and (any(
                isinstance(t, KerasTensor) for t in flatten((list(args), kwargs)))
                or has_symbolic_mask(inputs))):
            # Several symbolic tensors in the call (`layer(targets, logits)`), as Keras
            # allows, or masked inputs (a `call(x, mask=None)` sees the mask).
            out_shapes = infer_call_output_shapes(self, inputs, args, kwargs)
        else:
            out_shapes = self.compute_output_shape(shapes)
        dtype = self.dtype
        if isinstance(out_shapes, tuple) and (not out_shapes or not isinstance(
                out_shapes[0], (tuple, list))):
            outputs = KerasTensor(out_shapes, dtype=dtype)
        else:
            outputs = [KerasTensor(tuple(s), dtype=dtype) for s in out_shapes]
        Node(self, inputs, args, kwargs, outputs)
        if self.supports_masking or type(self).compute_mask is not Layer.compute_mask:
            attach_symbolic_masks(self, inputs, outputs)
        return outputs

    def _output_dtype(self):
        return self.dtype

    @property
    def input(self):
        return self._inbound_nodes[0].call_args[0] if self._inbound_nodes else None

    @property
    def output(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name} has no inbound nodes.")
        return self._inbound_nodes[0].outputs

    @property
    def input_shape(self):
        x = self.input
        return map_structure(lambda t: tuple(t.shape), x)

    @property
    def output_shape(self):
        return map_structure(lambda t: tuple(t.shape), self.output)

    # -- config ----------------------------------------------------------------------
    def get_config(self) -> dict:
        """Every constructor argument, so that ``from_config`` rebuilds the layer."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        if self.activity_regularizer is not None:
            from lamina import regularizers

            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


_TRAINABLE_WEIGHTS = Layer.__dict__["trainable_weights"]
