"""The parts of a FeatureSpace: ``Feature``, ``Cross`` and the two tiny data layers.

Their ``_keras_envelope`` is the module and registered name Keras writes for them, so a
FeatureSpace saved by either library loads in the other.
"""

from __future__ import annotations

import numpy as np

from lamina.layers.preprocessing.data_layer import DataLayer

_KERAS_MODULE = "keras.src.layers.preprocessing.feature_space"


def serialize(obj):
    """``serialize_keras_object`` (imported late: saving imports the layers)."""
    from lamina.saving import serialize_keras_object

    return serialize_keras_object(obj)


def deserialize(config):
    """``deserialize_keras_object`` (imported late, as :func:`serialize`)."""
    from lamina.saving import deserialize_keras_object

    return deserialize_keras_object(config)


class Cross:
    """A crossing of features, hashed into ``crossing_dim`` bins.

    Args:
        feature_names: the crossed features' names.
        crossing_dim: number of hash bins.
        output_mode: ``"one_hot"`` or ``"int"``.
    """

    _keras_envelope = (_KERAS_MODULE, "Cross")

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if output_mode not in {"int", "one_hot"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"{{'int', 'one_hot'}}. Received: output_mode={output_mode}")
        self.feature_names = tuple(feature_names)
        self.crossing_dim = crossing_dim
        self.output_mode = output_mode

    @property
    def name(self):
        return "_X_".join(self.feature_names)

    def get_config(self):
        return {"feature_names": self.feature_names, "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Feature:
    """A feature: its input dtype, its preprocessor layer and its output mode.

    Args:
        dtype: dtype of the raw column (``"float32"``, ``"int32"``, ``"string"``, ...).
        preprocessor: a layer (or its serialized config).
        output_mode: ``"int"``, ``"one_hot"`` or ``"float"``.
    """

    _keras_envelope = (_KERAS_MODULE, "Feature")

    def __init__(self, dtype, preprocessor, output_mode):
        if output_mode not in {"int", "one_hot", "float"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             "{'int', 'one_hot', 'float'}. Received: "
                             f"output_mode={output_mode}")
        self.dtype = dtype
        if isinstance(preprocessor, dict):
            preprocessor = deserialize(preprocessor)
        self.preprocessor = preprocessor
        self.output_mode = output_mode

    def get_config(self):
        return {"dtype": self.dtype, "preprocessor": serialize(self.preprocessor),
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class TFDIdentity(DataLayer):
    """Passes a feature through unchanged (the ``float`` feature's preprocessor)."""

    _keras_envelope = (_KERAS_MODULE, "TFDIdentity")

    def call(self, x):
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _output_dtype_name(self):
        return self.dtype


class TFDConcat(DataLayer):
    """Concatenates encoded features along ``axis``."""

    _keras_envelope = (_KERAS_MODULE, "TFDConcat")

    def __init__(self, axis, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, xs):
        return self._tensor(np.concatenate([self._np(x) for x in xs], axis=self.axis))

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        sizes = [s[self.axis] for s in shapes]
        total = None if any(s is None for s in sizes) else sum(sizes)
        out = list(shapes[0])
        out[self.axis] = total
        return tuple(out)

    def _output_dtype_name(self):
        return self.dtype

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
