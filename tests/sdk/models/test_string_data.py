"""String data into predict/fit as a string ``tf.Tensor`` holds it (an object array of
bytes through ``__array__``), or as ``bytes``/``str`` NumPy arrays (keras-io's FeatureSpace
example predicts on ``{name: tf.convert_to_tensor([value])}``)."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras


class _StringTensorLike:
    """Converts like an eager string ``tf.Tensor``: ``__array__`` gives bytes objects."""

    def __init__(self, values):
        self._values = values

    def __array__(self, dtype=None, copy=None):
        array = np.empty(len(self._values), dtype=object)
        array[:] = [v.encode("utf-8") for v in self._values]
        return array


def _model():
    keras.utils.set_random_seed(0)
    text = keras.Input(shape=(), dtype="string", name="thal")
    number = keras.Input(shape=(1,), name="age")
    lookup = keras.layers.StringLookup(vocabulary=["fixed", "normal", "réversible"],
                                       output_mode="one_hot")
    merged = keras.layers.Concatenate()([lookup(text), number])
    output = keras.layers.Dense(1, activation="sigmoid")(merged)
    model = keras.Model({"thal": text, "age": number}, output)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model


VALUES = ["fixed", "réversible", "normal", "other"]


@pytest.mark.parametrize("make", [
    lambda v: _StringTensorLike(v),
    lambda v: np.array([s.encode("utf-8") for s in v]),  # dtype "S"
    lambda v: np.array([s.encode("utf-8") for s in v], dtype=object),
    lambda v: np.array(v, dtype=object),
], ids=["tensor-like", "bytes", "object-bytes", "object-str"])
def test_predict_on_strings_equals_predict_on_a_str_array(make):
    model = _model()
    age = np.array([[0.5], [1.0], [-1.0], [2.0]], dtype="float32")
    expected = model.predict({"thal": np.array(VALUES), "age": age}, verbose=0)
    got = model.predict({"thal": make(VALUES), "age": age}, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert len(np.unique(np.round(expected, 6))) == 4


def test_fit_takes_bytes_string_inputs():
    model = _model()
    x = {"thal": np.array([b"fixed", b"normal"] * 4),
         "age": np.linspace(-1, 1, 8, dtype="float32")[:, None]}
    history = model.fit(x, np.array([1, 0] * 4, dtype="float32"), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_an_object_array_of_other_things_is_refused_with_its_shape():
    model = _model()
    bad = np.array([{"a": 1}, 3, None, "x"], dtype=object)
    with pytest.raises(ValueError, match=r"dtype=object\) with shape \(4,\)"):
        model.predict({"thal": bad, "age": np.zeros((4, 1), "float32")}, verbose=0)
