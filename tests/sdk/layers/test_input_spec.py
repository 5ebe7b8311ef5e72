"""InputSpec (Keras's class) enforced by Layer.__call__, and Layer(autocast)."""

import inspect

import numpy as np
import pytest

import lamina
from lamina import layers


class Spec(layers.Layer):
    def __init__(self, spec, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = spec

    def call(self, inputs):
        return inputs


@pytest.mark.parametrize("spec, shape, match", [
    (layers.InputSpec(ndim=3), (2, 4), "expected ndim=3, found ndim=2. Full shape received: "
                                       r"\(2, 4\)"),
    (layers.InputSpec(min_ndim=3), (2, 4), "expected min_ndim=3, found ndim=2"),
    (layers.InputSpec(max_ndim=2), (2, 4, 1), "expected max_ndim=2, found ndim=3"),
    (layers.InputSpec(axes={-1: 5}), (2, 4), r"expected axis -1 of input shape to have value "
                                             r"5, but received input with shape \(2, 4\)"),
    (layers.InputSpec(shape=(None, 3)), (2, 4), r"expected shape=\(None, 3\), found "
                                                r"shape=\(2, 4\)"),
    (layers.InputSpec(dtype="int32"), (2, 4), "expected dtype=int32, found dtype=float32"),
])
def test_violations_name_the_layer_and_the_shape(spec, shape, match):
    layer = Spec(spec, name="checked")
    with pytest.raises(ValueError, match="layer 'checked' is incompatible with the layer: "
                                         + match):
        layer(np.zeros(shape, "float32"))


@pytest.mark.parametrize("spec, shape", [
    (layers.InputSpec(ndim=2), (2, 4)), (layers.InputSpec(min_ndim=2), (2, 4, 1)),
    (layers.InputSpec(axes={1: 4}), (3, 4)), (layers.InputSpec(shape=(None, 4)), (7, 4)),
    (layers.InputSpec(shape=(None, 4, 1), allow_last_axis_squeeze=True), (7, 4)),
])
def test_compatible_inputs_pass(spec, shape):
    assert Spec(spec)(np.zeros(shape, "float32")).shape == shape


def test_symbolic_calls_are_checked_too():
    layer = Spec(layers.InputSpec(ndim=3), name="sym")
    with pytest.raises(ValueError, match="layer 'sym'"):
        layer(lamina.Input((4,)))


def test_input_count_and_spec_config():
    layer = Spec([layers.InputSpec(ndim=2), layers.InputSpec(ndim=2)], name="two")
    with pytest.raises(ValueError, match='Layer "two" expects 2 input'):
        layer(np.zeros((2, 3), "float32"))
    spec = layers.InputSpec(shape=(None, 3), axes={1: 3})
    assert layers.InputSpec.from_config(spec.get_config()).get_config() == spec.get_config()
    assert repr(spec) == "InputSpec(shape=(None, 3), ndim=2, axes={1: 3})"
    with pytest.raises(TypeError, match="integer keys"):
        layers.InputSpec(axes={"a": 1})
    with pytest.raises(ValueError, match="Axis 3 is greater"):
        layers.InputSpec(ndim=2, axes={3: 1})


def test_keras_signature():
    assert list(inspect.signature(layers.InputSpec).parameters) == [
        "dtype", "shape", "ndim", "max_ndim", "min_ndim", "axes", "allow_last_axis_squeeze",
        "name", "optional"]


def test_einsum_dense_sets_its_spec_when_built():
    layer = layers.EinsumDense("abc,cd->abd", output_shape=(None, 2))
    layer(np.zeros((1, 3, 4), "float32"))
    assert layer.input_spec.ndim == 3
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=2"):
        layer(np.zeros((3, 4), "float32"))


def test_autocast():
    assert "autocast" in inspect.signature(layers.Layer).parameters
    x = np.ones((2, 3), "float64")
    assert layers.Identity()(x).dtype == "float32"
    kept = layers.Identity(autocast=False)
    assert kept.autocast is False and kept(x).dtype == "float64"
    assert "autocast" not in kept.get_config()  # as in Keras


@pytest.mark.parametrize("make, good, bad, match", [
    (lambda: layers.Dense(2), (3, 4), (3, 5), "expected axis -1 of input shape to have value 4"),
    (lambda: layers.Dense(2), (3, 4), (4,), "expected min_ndim=2, found ndim=1"),
    (lambda: layers.BatchNormalization(), (3, 4), (3, 2, 4), "expected ndim=2, found ndim=3"),
    (lambda: layers.ConvLSTM2D(2, 2), (1, 2, 3, 3, 1), (1, 3, 3, 1),
     "expected ndim=5, found ndim=4"),
    (lambda: layers.ZeroPadding3D(), (1, 2, 2, 2, 1), (1, 2, 2, 1), "expected ndim=5"),
])
def test_layers_set_their_specs_where_keras_does(make, good, bad, match):
    layer = make()
    layer(np.zeros(good, "float32"))
    with pytest.raises(ValueError, match=match):
        layer(np.zeros(bad, "float32"))
