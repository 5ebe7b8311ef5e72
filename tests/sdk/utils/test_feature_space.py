"""FeatureSpace against Keras 3.15.1 (fixtures), and the keras-io structured-data example."""

import json
import os
import zipfile

import numpy as np
import pytest

import lamina
from lamina.utils import FeatureSpace

_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "preprocessing")
with open(os.path.join(_DIR, "feature_space_fixtures.json"), encoding="utf-8") as _f:
    FIXTURES = json.load(_f)
FLOATS = ("age", "fare", "rate", "score")


def _columns(n=None):
    data = {k: np.array(v[:n] if n else v) for k, v in FIXTURES["data"].items()}
    return {k: v.astype("float32") if k in FLOATS else v for k, v in data.items()}


def _concat_space():
    return FeatureSpace(
        features={"age": "float_discretized", "fare": "float_normalized",
                  "sex": "string_categorical", "city": "string_hashed",
                  "cp": "integer_categorical", "zip": "integer_hashed", "rate": "float",
                  "score": "float_rescaled"},
        crosses=[("sex", "city")], crossing_dim=16, hashing_dim=8, num_discretization_bins=3,
        output_mode="concat")


def _dict_space():
    return FeatureSpace(
        features={
            "age": FeatureSpace.float_discretized(num_bins=4),
            "fare": FeatureSpace.float_normalized(),
            "rate": FeatureSpace.float(),
            "score": FeatureSpace.float_rescaled(scale=0.5, offset=1.0),
            "sex": FeatureSpace.string_categorical(),
            "city": FeatureSpace.string_hashed(num_bins=8),
            "thal": FeatureSpace.string_categorical(num_oov_indices=0, output_mode="int"),
            "cp": FeatureSpace.integer_categorical(max_tokens=3),
            "zip": FeatureSpace.integer_hashed(num_bins=5),
        },
        crosses=[FeatureSpace.cross(("sex", "cp"), crossing_dim=6)], output_mode="dict")


def test_concat_output_matches_keras():
    space = _concat_space()
    space.adapt({k: v for k, v in _columns().items() if k in space.features})
    query = {k: v for k, v in _columns(6).items() if k in space.features}
    np.testing.assert_allclose(space(query).numpy(), FIXTURES["concat"]["output"], atol=1e-6)
    single = space({k: v[0] for k, v in query.items()})
    np.testing.assert_allclose(single.numpy(), FIXTURES["concat_single"], atol=1e-6)


def test_dict_output_matches_keras():
    space = _dict_space()
    space.adapt(_columns())
    out = space(_columns(6))
    expected = FIXTURES["dict"]["output"]
    assert sorted(out) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(out[name].numpy(), value, atol=1e-6, err_msg=name)
    assert space.preprocessors["sex"].get_vocabulary() == FIXTURES["dict"]["vocab_sex"]
    np.testing.assert_allclose(space.preprocessors["age"].bin_boundaries,
                               FIXTURES["dict"]["age_boundaries"], rtol=1e-6)


def test_adapt_on_an_iterable_of_batches_equals_adapt_on_a_dict():
    columns = {k: v for k, v in _columns().items() if k in ("fare", "sex", "cp")}
    whole = FeatureSpace({"fare": "float_normalized", "sex": "string_categorical",
                          "cp": "integer_categorical"})
    whole.adapt(columns)
    batched = FeatureSpace({"fare": "float_normalized", "sex": "string_categorical",
                            "cp": "integer_categorical"})
    batched.adapt({k: v[i:i + 32] for k, v in columns.items()} for i in range(0, 40, 32))
    np.testing.assert_allclose(batched(columns).numpy(), whole(columns).numpy(), atol=1e-6)


def test_loads_a_keras_written_feature_space_and_round_trips(tmp_path):
    space = lamina.saving.load_model(os.path.join(_DIR, "keras_feature_space.keras"))
    assert isinstance(space, FeatureSpace)
    query = {k: v for k, v in _columns(6).items() if k in space.features}
    np.testing.assert_allclose(space(query).numpy(), FIXTURES["concat"]["output"], atol=1e-6)
    path = str(tmp_path / "space.keras")
    space.save(path)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert config["module"] == "keras.utils" and config["class_name"] == "FeatureSpace"
    assert config["config"]["features"]["sex"]["registered_name"] == "Feature"
    again = lamina.saving.load_model(path)
    np.testing.assert_allclose(again(query).numpy(), FIXTURES["concat"]["output"], atol=1e-6)


def test_config_round_trip_before_adapt():
    space = _concat_space()
    clone = FeatureSpace.from_config(space.get_config())
    assert sorted(clone.features) == sorted(space.features)
    assert [c.name for c in clone.crosses] == ["sex_X_city"]
    assert clone.get_config()["crossing_dim"] == 16


def _heart_like(n, seed):
    # The keras-io example reads heart.csv; same columns, synthetic rows with a learnable label.
    rng = np.random.default_rng(seed)
    data = {
        "age": rng.integers(29, 78, n), "sex": rng.integers(0, 2, n),
        "cp": rng.integers(0, 5, n), "trestbps": rng.normal(130, 17, n).round(),
        "chol": rng.normal(246, 50, n).round(), "fbs": rng.integers(0, 2, n),
        "restecg": rng.integers(0, 3, n), "thalach": rng.normal(150, 22, n).round(),
        "exang": rng.integers(0, 2, n), "oldpeak": rng.exponential(1.0, n).round(1),
        "slope": rng.integers(1, 4, n), "ca": rng.integers(0, 4, n),
        "thal": rng.choice(["fixed", "normal", "reversible"], n),
    }
    target = ((data["thal"] == "reversible") | (data["cp"] == 0)).astype("float32")
    return data, target


def test_structured_data_classification_with_feature_space_example():
    train, y_train = _heart_like(200, 0)
    categorical = {name: FeatureSpace.integer_categorical(num_oov_indices=0)
                   for name in ("sex", "cp", "fbs", "restecg", "exang", "ca")}
    normalized = {name: FeatureSpace.float_normalized()
                  for name in ("trestbps", "chol", "thalach", "oldpeak", "slope")}
    feature_space = FeatureSpace(
        features={**categorical, **normalized,
                  "thal": FeatureSpace.string_categorical(num_oov_indices=0),
                  "age": FeatureSpace.float_discretized(num_bins=30)},
        crosses=[FeatureSpace.cross(feature_names=("sex", "age"), crossing_dim=64),
                 FeatureSpace.cross(feature_names=("thal", "ca"), crossing_dim=16)],
        output_mode="concat")
    feature_space.adapt(train)
    x_train = feature_space(train)
    dict_inputs = feature_space.get_inputs()
    encoded_features = feature_space.get_encoded_features()
    assert tuple(encoded_features.shape) == (None, x_train.shape[-1])
    # The example builds `Model(encoded_features, ...)`; Lamina's functional models start
    # from Input tensors, so the head starts from an Input of the encoded width.
    encoded = lamina.Input(shape=(encoded_features.shape[-1],))
    x = lamina.layers.Dense(32, activation="relu")(encoded)
    x = lamina.layers.Dropout(0.5)(x)
    predictions = lamina.layers.Dense(1, activation="sigmoid")(x)
    training_model = lamina.Model(encoded, predictions)
    training_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    lamina.utils.set_random_seed(0)
    history = training_model.fit(x_train.numpy(), y_train, epochs=15, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.8
    inference_model = lamina.Model(dict_inputs, training_model(encoded_features))
    sample = {"age": 60, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1,
              "restecg": 2, "thalach": 150, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0,
              "thal": "fixed"}
    input_dict = {name: lamina.ops.convert_to_tensor([value]) for name, value in sample.items()}
    prediction = inference_model.predict(input_dict, verbose=0)
    single = training_model.predict(feature_space({k: np.array([v]) for k, v in
                                                   sample.items()}).numpy(), verbose=0)
    np.testing.assert_allclose(prediction, single, rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"features": {}}, "cannot be None or empty"),
    ({"features": {"a": "float"}, "output_mode": "list"}, "output_mode=list"),
    ({"features": {"a": "bogus"}}, "Invalid feature type: bogus"),
    ({"features": {"a": "float"}, "crosses": [("a", "b")]}, "unknown features"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureSpace(**kwargs)


def test_use_before_adapt_and_one_hot_of_float_are_rejected():
    space = FeatureSpace({"c": "string_categorical"})
    with pytest.raises(ValueError, match="call `.adapt"):
        space({"c": np.array(["a"])})
    bad = FeatureSpace({"x": FeatureSpace.feature("float32", lamina.layers.Rescaling(2.0),
                                                  "one_hot")})
    with pytest.raises(ValueError, match="should return an integer dtype"):
        bad.get_encoded_features()
    with pytest.raises(ValueError, match="only be called with a dict"):
        FeatureSpace({"x": "float"})(np.zeros(3))
