"""``Model``: a layer with training (compile/fit/evaluate/predict) and saving.

``Model(inputs, outputs)`` returns a :class:`~lamina.models.functional.Functional`;
subclasses define layers in ``__init__`` and the forward pass in ``call``.
"""

from __future__ import annotations

import functools

from lamina.layers.layer import Layer
from lamina.models.trainer import Trainer


class Model(Trainer, Layer):
    """A trainable, savable graph of layers.

    Three ways to make one, as in Keras: ``Sequential([...])``;
    ``Model(inputs, outputs)`` (functional); or subclassing ``Model`` with layers
    created in ``__init__`` and a ``call(inputs, training=None)`` method.
    """

    def __new__(cls, *args, **kwargs):
        # Keras's `functional_init_arguments`: a subclass's own three-argument
        # constructor (`VAE(784, 64, 32)`) is not a functional call.
        if (len(args) == 2 or (len(args) == 1 and "outputs" in kwargs)
                or ("inputs" in kwargs and "outputs" in kwargs)):
            from lamina.models.functional import Functional

            if cls is Model:
                return Functional.__new__(Functional)
            if not issubclass(cls, Functional):
                # A subclass built functionally (`CustomModel(inputs, outputs)`, Keras's
                # custom train_step pattern): its methods over the functional graph.
                return Functional.__new__(_functional_subclass(cls, Functional))
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs:
            raise TypeError(
                "Model(inputs, outputs) builds a functional model; subclasses call "
                "super().__init__() with keyword arguments only (name=..., trainable=...).")
        Layer.__init__(self, **kwargs)
        Trainer.__init__(self)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        original = cls.__init__

        # Trainer state must exist even when a subclass forgets to call super().__init__ early.
        @functools.wraps(original)
        def __init__(self, *args, **kw):  # noqa: N807
            original(self, *args, **kw)
            if not hasattr(self, "_compiled"):
                Trainer.__init__(self)

        if "__init__" in cls.__dict__:
            cls.__init__ = __init__

    def call(self, inputs, training=None):
        raise NotImplementedError(
            f"Model {type(self).__name__} does not have a `call()` method implemented.")

    @property
    def layers(self) -> list:
        return [la for la in self._flat_layers()]

    @property
    def input_shape(self):
        inputs = getattr(self, "inputs", None)
        if not inputs:
            return Layer.input_shape.fget(self)
        shapes = [tuple(t.shape) for t in inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        outputs = getattr(self, "outputs", None)
        if not outputs:
            return Layer.output_shape.fget(self)
        shapes = [tuple(t.shape) for t in outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def get_layer(self, name=None, index=None):
        """Return a layer by ``name`` or by ``index`` (``model.layers[index]``)."""
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: "
                             f"index={index}, name={name}.")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: "
                             f"{[la.name for la in self.layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    def build(self, input_shape=None):
        if input_shape is not None and not self.built and type(self).call is not Model.call:
            from lamina.layers.input_layer import Input

            if isinstance(input_shape, list) and input_shape and isinstance(
                    input_shape[0], (tuple, list)):
                inputs = [Input(batch_shape=tuple(s)) for s in input_shape]
            else:
                inputs = Input(batch_shape=tuple(input_shape))
            self._build_shapes_by_dummy_call(inputs)
        self.built = True

    def _build_shapes_by_dummy_call(self, inputs):
        import numpy as np

        from lamina.backend.autodiff import no_grad
        from lamina.layers.symbolic import map_structure

        dummy = map_structure(
            lambda t: np.zeros(tuple(1 if d is None else d for d in t.shape), dtype=t.dtype),
            inputs)
        with no_grad(), np.errstate(all="ignore"):
            self.built = True
            kwargs = {"training": False} if self._call_has_training else {}
            self.call(map_structure(self._convert_input, dummy), **kwargs)
        self._clear_losses()  # the dummy call's add_loss terms are not the caller's

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print Keras's table of layers, output shapes and parameter counts."""
        from lamina.models.summary import print_summary

        print_summary(self, line_length=line_length, print_fn=print_fn,
                      show_trainable=show_trainable)

    def get_config(self) -> dict:
        from lamina.saving.serialization import functional_config

        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina.saving.serialization import functional_from_config

        return functional_from_config(config, custom_objects=custom_objects)

    def to_json(self, **kwargs) -> str:
        """The model's config as Keras 3 JSON (what ``config.json`` in ``.keras`` holds)."""
        import json

        from lamina.saving.serialization import serialize_keras_object

        return json.dumps(serialize_keras_object(self), **kwargs)

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Save to ``.keras`` (zip) or legacy ``.h5``."""
        from lamina.saving.saving_api import save_model

        save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """Save weights to a ``.weights.h5`` file, or sharded files if ``max_shard_size`` (GB)."""
        from lamina.saving.saving_api import save_weights

        save_weights(self, filepath, overwrite=overwrite, max_shard_size=max_shard_size)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """Load weights from ``.weights.h5``, ``.weights.json`` (sharded), ``.keras`` or ``.h5``."""
        from lamina.saving.saving_api import load_weights

        load_weights(self, filepath, skip_mismatch=skip_mismatch, **kwargs)


_FUNCTIONAL_SUBCLASSES: dict = {}


def _functional_subclass(cls, functional):
    """``cls`` with ``Functional`` mixed in after it, made once per class."""
    if cls not in _FUNCTIONAL_SUBCLASSES:
        _FUNCTIONAL_SUBCLASSES[cls] = type(cls.__name__, (cls, functional), {
            "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return _FUNCTIONAL_SUBCLASSES[cls]
