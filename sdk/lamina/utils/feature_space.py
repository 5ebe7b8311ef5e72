"""FeatureSpace: one-stop preprocessing of structured (tabular) data, as ``keras.utils``.

A ``FeatureSpace`` maps a dict of raw columns to one encoded vector (``"concat"``) or a
dict of encoded features (``"dict"``): each feature has a preprocessor (lookup, hashing,
normalization, discretization, ...), integer outputs may be one-hot encoded, and feature
crosses are hashed. ``adapt`` learns every preprocessor's state as Keras does, from
batches of 32 rows of a dict of arrays (or from an iterable of dict batches).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.foreign_tensors import reject_graph_tensor
from lamina.backend.tensor import Tensor
from lamina.layers.input_layer import Input
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.category_encoding import CategoryEncoding
from lamina.layers.preprocessing.discretization import Discretization
from lamina.layers.preprocessing.hashing import HashedCrossing, Hashing
from lamina.layers.preprocessing.integer_lookup import IntegerLookup
from lamina.layers.preprocessing.normalization import Normalization, Rescaling
from lamina.layers.preprocessing.string_lookup import StringLookup
from lamina.layers.preprocessing.text_vectorization import TextVectorization
from lamina.utils.feature_space_specs import (
    Cross,
    Feature,
    TFDConcat,
    TFDIdentity,
    deserialize,
    serialize,
)
from lamina.utils.naming import uniquify

_ADAPT_BATCH = 32


class FeatureSpace(Layer):
    """Preprocesses and encodes a dict of structured features (``keras.utils.FeatureSpace``).

    Args:
        features: ``{name: Feature or preset name}``; presets are ``"float"``,
            ``"float_rescaled"``, ``"float_normalized"``, ``"float_discretized"``,
            ``"integer_categorical"``, ``"string_categorical"``, ``"integer_hashed"``,
            ``"string_hashed"``.
        output_mode: ``"concat"`` (one float vector) or ``"dict"``.
        crosses: ``Cross`` objects or tuples of feature names.
        crossing_dim: hash bins of crosses given as tuples.
        hashing_dim: hash bins of the hashed presets.
        num_discretization_bins: bins of the ``"float_discretized"`` preset.
        name: layer name.

    Example:
        >>> import numpy as np
        >>> from lamina.utils import FeatureSpace
        >>> fs = FeatureSpace({"x": "float_normalized", "c": "string_categorical"})
        >>> fs.adapt({"x": np.array([0.0, 2.0]), "c": np.array(["a", "b"])})
        >>> fs({"x": np.array([2.0]), "c": np.array(["b"])}).numpy().round(2)
        array([[0., 1., 0., 1.]], dtype=float32)
    """

    _keras_envelope = ("keras.utils", None)

    @classmethod
    def cross(cls, feature_names, crossing_dim, output_mode="one_hot"):
        """A feature cross (see :class:`Cross`)."""
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode):
        """A custom feature (see :class:`Feature`)."""
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name=None):
        """A float column passed through."""
        name = name or uniquify("float")
        return Feature("float32", TFDIdentity(dtype="float32", name=f"{name}_preprocessor"),
                       "float")

    @classmethod
    def float_rescaled(cls, scale=1.0, offset=0.0, name=None):
        """A float column times ``scale`` plus ``offset``."""
        name = name or uniquify("float_rescaled")
        return Feature("float32", Rescaling(scale=scale, offset=offset,
                                            name=f"{name}_preprocessor"), "float")

    @classmethod
    def float_normalized(cls, name=None):
        """A float column standardized with statistics learned by ``adapt``."""
        name = name or uniquify("float_normalized")
        return Feature("float32", Normalization(axis=-1, name=f"{name}_preprocessor"),
                       "float")

    @classmethod
    def float_discretized(cls, num_bins, bin_boundaries=None, output_mode="one_hot",
                          name=None):
        """A float column bucketed into ``num_bins`` quantile bins."""
        name = name or uniquify("float_discretized")
        return Feature("float32", Discretization(num_bins=num_bins,
                                                 bin_boundaries=bin_boundaries,
                                                 name=f"{name}_preprocessor"), output_mode)

    @classmethod
    def integer_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                            name=None):
        """An integer category column, indexed by a learned vocabulary."""
        name = name or uniquify("integer_categorical")
        return Feature("int32", IntegerLookup(name=f"{name}_preprocessor", max_tokens=max_tokens,
                                              num_oov_indices=num_oov_indices), output_mode)

    @classmethod
    def string_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                           name=None):
        """A string category column, indexed by a learned vocabulary."""
        name = name or uniquify("string_categorical")
        return Feature("string", StringLookup(name=f"{name}_preprocessor", max_tokens=max_tokens,
                                              num_oov_indices=num_oov_indices), output_mode)

    @classmethod
    def string_hashed(cls, num_bins, output_mode="one_hot", name=None):
        """A string column hashed into ``num_bins`` bins."""
        name = name or uniquify("string_hashed")
        return Feature("string", Hashing(name=f"{name}_preprocessor", num_bins=num_bins),
                       output_mode)

    @classmethod
    def integer_hashed(cls, num_bins, output_mode="one_hot", name=None):
        """An integer column hashed into ``num_bins`` bins."""
        name = name or uniquify("integer_hashed")
        return Feature("int32", Hashing(name=f"{name}_preprocessor", num_bins=num_bins),
                       output_mode)

    def __init__(self, features, output_mode="concat", crosses=None, crossing_dim=32,
                 hashing_dim=32, num_discretization_bins=32, name=None):
        super().__init__(name=name)
        if not features:
            raise ValueError("The `features` argument cannot be None or empty.")
        self.crossing_dim = crossing_dim
        self.hashing_dim = hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {n: self._standardize_feature(n, f) for n, f in features.items()}
        self.crosses = []
        for cross in crosses or []:
            if isinstance(cross, dict):
                cross = deserialize(cross)
            if not isinstance(cross, Cross):
                if not crossing_dim:
                    raise ValueError("When specifying `crosses`, the argument `crossing_dim` "
                                     "(dimensionality of the crossing space) should be "
                                     "specified as well.")
                if any(key not in features for key in cross):
                    raise ValueError("All features referenced in the `crosses` argument "
                                     "should be present in the `features` dict. Received "
                                     f"unknown features: {cross}")
                cross = Cross(cross, crossing_dim=crossing_dim)
            self.crosses.append(cross)
        self.crosses_by_name = {c.name: c for c in self.crosses}
        if output_mode not in {"dict", "concat"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"{{'dict', 'concat'}}. Received: output_mode={output_mode}")
        self.output_mode = output_mode
        self.inputs = {n: Input(shape=(1,), dtype=f.dtype, name=n)
                       for n, f in self.features.items()}
        self.preprocessors = {n: f.preprocessor for n, f in self.features.items()}
        self.encoded_features = None
        self.crossers = {c.name: HashedCrossing(c.crossing_dim, name=c.name)
                         for c in self.crosses}
        self.one_hot_encoders = {}
        self._is_adapted = False
        self.concat = None
        self._preprocessed_features_names = None
        self._crossed_features_names = None
        self._sublayers_built = False

    def _standardize_feature(self, name, feature):
        if isinstance(feature, Feature):
            return feature
        if isinstance(feature, dict):
            return deserialize(feature)
        presets = {"float": lambda: self.float(name=name),
                   "float_normalized": lambda: self.float_normalized(name=name),
                   "float_rescaled": lambda: self.float_rescaled(name=name),
                   "float_discretized": lambda: self.float_discretized(
                       name=name, num_bins=self.num_discretization_bins),
                   "integer_categorical": lambda: self.integer_categorical(name=name),
                   "string_categorical": lambda: self.string_categorical(name=name),
                   "integer_hashed": lambda: self.integer_hashed(self.hashing_dim, name=name),
                   "string_hashed": lambda: self.string_hashed(self.hashing_dim, name=name)}
        if not isinstance(feature, str) or feature not in presets:
            raise ValueError(f"Invalid feature type: {feature}")
        return presets[feature]()

    # -- adapt --------------------------------------------------------------------------
    def _list_adaptable_preprocessors(self):
        names = []
        for name in self.features:
            preprocessor = self.preprocessors[name]
            if isinstance(preprocessor, Normalization) and preprocessor.input_mean is not None:
                continue
            if isinstance(preprocessor, TextVectorization) and \
                    preprocessor._has_input_vocabulary:
                continue
            if isinstance(preprocessor, Discretization) and preprocessor.num_bins is None:
                continue
            if hasattr(preprocessor, "adapt"):
                names.append(name)
        return names

    @staticmethod
    def _batches(dataset):
        """``dataset`` as a list of dict batches (a dict of arrays: batches of 32 rows)."""
        if isinstance(dataset, dict):
            columns = {k: np.asarray(v) for k, v in dataset.items()}
            n = len(next(iter(columns.values())))
            return [{k: v[i:i + _ADAPT_BATCH] for k, v in columns.items()}
                    for i in range(0, n, _ADAPT_BATCH)]
        if isinstance(dataset, (str, bytes)) or not hasattr(dataset, "__iter__"):
            raise ValueError("`adapt()` can only be called on a dict of arrays/lists or an "
                             f"iterable of dict batches. Received instead: {dataset} (of "
                             f"type {type(dataset)})")
        batches = list(dataset)
        if not batches or not all(isinstance(b, dict) for b in batches):
            raise ValueError("`adapt()` expects every batch to be a dict of arrays. "
                             f"Received: {type(batches[0]) if batches else 'no batches'}")
        return batches

    def adapt(self, dataset):
        """Learn every adaptable preprocessor's state.

        Args:
            dataset: a dict of arrays (one per feature) or an iterable of such dicts
                (batches).
        """
        batches = self._batches(dataset)
        for name in self._list_adaptable_preprocessors():
            feature = []
            for batch in batches:
                x = batch[name]
                x = np.asarray(x.data if isinstance(x, Tensor) else x)
                if x.ndim == 0:
                    x = x.reshape(1)
                if x.ndim == 1:
                    x = x[:, None]
                feature.append(x)
            self.preprocessors[name].adapt(iter(feature))
        self._is_adapted = True
        self.get_encoded_features()
        self.built = True
        self._sublayers_built = True

    # -- encoding -----------------------------------------------------------------------
    def get_inputs(self):
        """The ``{name: Input}`` dict of the model built by :meth:`get_encoded_features`."""
        self._check_if_built()
        return self.inputs

    def get_encoded_features(self):
        """The encoded features as symbolic tensors (build a model on them)."""
        self._check_if_adapted()
        if self.encoded_features is None:
            preprocessed = self._preprocess_features(self.inputs)
            crossed = self._cross_features(preprocessed)
            self.encoded_features = self._merge_features(preprocessed, crossed)
        return self.encoded_features

    def _preprocess_features(self, features):
        return {name: self.preprocessors[name](features[name]) for name in features}

    def _cross_features(self, features):
        return {c.name: self.crossers[c.name]([features[n] for n in c.feature_names])
                for c in self.crosses}

    def _cardinality(self, name, preprocessor):
        if isinstance(preprocessor, (IntegerLookup, StringLookup)):
            return preprocessor.vocabulary_size()
        if isinstance(preprocessor, CategoryEncoding):
            return preprocessor.num_tokens
        if isinstance(preprocessor, (Discretization, HashedCrossing, Hashing)):
            return preprocessor.num_bins
        raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. However it isn't a "
                         "standard feature and the dimensionality of its output space is not "
                         "known, thus it cannot be one-hot encoded. Try using "
                         "`output_mode='int'`.")

    def _merge_features(self, preprocessed, crossed):
        if not self._preprocessed_features_names:
            self._preprocessed_features_names = sorted(preprocessed)
            self._crossed_features_names = sorted(crossed)
        names = self._preprocessed_features_names + self._crossed_features_names
        values = [preprocessed[n] for n in self._preprocessed_features_names] + \
            [crossed[n] for n in self._crossed_features_names]
        if self._sublayers_built:
            encoded = []
            for name, value in zip(names, values):
                encoder = self.one_hot_encoders.get(name)
                encoded.append(encoder(value) if encoder else value)
            if self.output_mode == "dict":
                return dict(zip(names, encoded))
            return self.concat(encoded)
        specs = [self.features[n] for n in self._preprocessed_features_names] + \
            [self.crosses_by_name[n] for n in self._crossed_features_names]
        out = {}
        for name, value, spec in zip(names, values, specs):
            dtype = str(value.dtype)
            if spec.output_mode == "one_hot":
                if not dtype.startswith("int"):
                    raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. Thus its "
                                     "preprocessor should return an integer dtype. Instead it "
                                     f"returns a {dtype} dtype.")
                preprocessor = self.preprocessors.get(name) or self.crossers.get(name)
                encoder = CategoryEncoding(num_tokens=self._cardinality(name, preprocessor),
                                           output_mode="multi_hot")
                self.one_hot_encoders[name] = encoder
                value = encoder(value)
            if self.output_mode == "concat" and (str(value.dtype).startswith("int")
                                                 or str(value.dtype) == "string"):
                raise ValueError(f"Cannot concatenate features because feature '{name}' has "
                                 f"not been encoded (it has dtype {value.dtype}). Consider "
                                 "using `output_mode='dict'`.")
            out[name] = value
        if self.output_mode == "concat":
            self.concat = TFDConcat(axis=-1)
            return self.concat(list(out.values()))
        return out

    def _check_if_adapted(self):
        if not self._is_adapted:
            if not self._list_adaptable_preprocessors():
                self._is_adapted = True
            else:
                raise ValueError("You need to call `.adapt(dataset)` on the FeatureSpace "
                                 "before you can start using it.")

    def _check_if_built(self):
        if not self._sublayers_built:
            self._check_if_adapted()
            self.get_encoded_features()
            self._sublayers_built = True

    def __call__(self, data):
        self._check_if_built()
        if not isinstance(data, dict):
            raise ValueError("A FeatureSpace can only be called with a dict. Received: "
                             f"data={data} (of type {type(data)}")
        columns, rebatched = {}, False
        for name, x in data.items():
            reject_graph_tensor(x, f"FeatureSpace's feature {name!r}")
            x = np.asarray(x.data if isinstance(x, Tensor) else x)
            if x.ndim == 0:
                x, rebatched = x.reshape(1, 1), True
            elif x.ndim == 1:
                x = x[:, None]
            dtype = self.features[name].dtype if name in self.features else None
            if dtype and dtype != "string" and x.dtype.kind not in "USO":
                x = x.astype(dtype)
            columns[name] = Tensor(x)
        preprocessed = self._preprocess_features(columns)
        merged = self._merge_features(preprocessed, self._cross_features(preprocessed))
        if rebatched:
            if self.output_mode == "concat":
                return Tensor(np.squeeze(np.asarray(merged.data), axis=0))
            merged = {k: Tensor(np.squeeze(np.asarray(v.data), axis=0))
                      if v.ndim == 2 and v.shape[0] == 1 else v for k, v in merged.items()}
        return merged

    # -- config and saving ----------------------------------------------------------------
    def get_config(self):
        return {"features": {n: serialize(f) for n, f in self.features.items()},
                "output_mode": self.output_mode,
                "crosses": [serialize(c) for c in self.crosses],
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_build_config(self):
        """Each preprocessor's build config (Keras's ``build_config`` of a FeatureSpace)."""
        return {name: ({"input_shape": [None, 1]} if f.preprocessor.built and not isinstance(
            f.preprocessor, (StringLookup, IntegerLookup)) else {})
            for name, f in self.features.items()}

    def build_from_config(self, config):
        """Build the preprocessors of a loaded FeatureSpace; it counts as adapted."""
        for name, build in config.items():
            preprocessor = self.features[name].preprocessor
            shape = (build or {}).get("input_shape")
            if not preprocessor.built and shape is not None:
                preprocessor.build(tuple(shape))
                preprocessor.built = True
        self._is_adapted = True
        self.built = True

    def save(self, filepath):
        """Save the FeatureSpace (its state included) to a ``.keras`` file.

        Args:
            filepath: a path ending in ``.keras``; load it back with
                ``lamina.saving.load_model``.
        """
        from lamina.saving.keras_file import save_keras

        save_keras(self, filepath)

    def save_own_variables(self, store):
        """Nothing of its own: the preprocessors hold the state."""

    def load_own_variables(self, store):
        """Nothing of its own."""


def _register():
    from lamina.saving.registry import get_custom_objects

    objects = get_custom_objects()
    for cls in (FeatureSpace, Feature, Cross, TFDIdentity, TFDConcat):
        objects.setdefault(cls.__name__, cls)


_register()
