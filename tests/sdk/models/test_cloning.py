"""clone_model with Keras's clone_function, call_function, recursive and input_tensors."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina.models import clone_model


def _functional():
    inputs = keras.Input(shape=(4,), name="x")
    shared = keras.layers.Dense(3, name="shared")
    inner = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, name="inner_dense")],
                             name="inner")
    out = inner(keras.ops.add(shared(inputs), shared(inputs)))
    return keras.Model(inputs, out, name="outer")


def test_clone_has_new_weights_same_structure_and_keeps_sharing():
    model = _functional()
    clone = clone_model(model)
    assert [type(la).__name__ for la in clone.layers] == [
        type(la).__name__ for la in model.layers]
    assert clone.count_params() == model.count_params()
    assert all(a is not b for a, b in zip(clone.weights, model.weights))
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    shared = [la for la in clone.layers if la.name == "shared"]
    assert len(shared) == 1  # called twice, cloned once


def test_clone_function_and_recursive():
    model = _functional()
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        config = layer.get_config()
        if isinstance(layer, keras.layers.Dense):
            config["use_bias"] = False
        return layer.__class__.from_config(config)

    flat = clone_model(model, clone_function=clone_function)
    assert "inner" in seen  # the nested model went to clone_function whole
    seen.clear()
    deep = clone_model(model, clone_function=clone_function, recursive=True)
    assert "inner_dense" in seen and "inner" not in seen
    assert deep.count_params() == 4 * 3 + 3 * 2  # no biases anywhere
    assert flat.count_params() == 4 * 3 + (3 * 2 + 2)  # the inner model kept its bias


def test_call_function_inserts_layers_in_functional_models_only():
    model = _functional()

    def call_function(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        return keras.layers.Activation("relu", name=f"{layer.name}_relu")(out)

    clone = clone_model(model, call_function=call_function)
    assert "shared_relu" in [la.name for la in clone.layers]
    seq = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="`call_function` argument is not supported with "
                                         "Sequential"):
        clone_model(seq, call_function=call_function)


def test_sequential_clone_on_input_tensors_and_compiled():
    seq = keras.Sequential([keras.Input(shape=(2,), name="in"), keras.layers.Dense(1)])
    seq.compile(optimizer="adam", loss="mse", metrics=["mae"])
    clone = clone_model(seq)
    assert clone.compiled and type(clone.optimizer).__name__ == "Adam"
    assert clone.layers[0] is not seq.layers[0]
    tensor = keras.Input(shape=(2,))
    on_tensor = clone_model(seq, input_tensors=tensor)
    assert on_tensor.inputs[0] is tensor
    with pytest.raises(ValueError, match="must contain a single tensor"):
        clone_model(seq, input_tensors=[tensor, tensor])


def test_subclassed_models_refuse_clone_function_and_bad_kwargs():
    class Tiny(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ValueError, match="only supported for Sequential models or Functional"):
        clone_model(Tiny(), clone_function=lambda layer: layer)
    with pytest.raises(ValueError, match="Unexpected keyword argument"):
        clone_model(_functional(), bogus=1)
