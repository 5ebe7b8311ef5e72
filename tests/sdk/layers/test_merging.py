"""Merging layers and their functional forms: forward against numpy, gradients, shape
validation, masks."""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend.tensor import Tensor
from lamina.testing import run_layer_test

RNG = np.random.default_rng(0)


def _data(*shapes):
    return [RNG.standard_normal(s).astype("float32") for s in shapes]


@pytest.mark.parametrize("cls, kwargs, shapes, out_shape, reference", [
    (layers.Add, {}, [(4, 5)] * 3, (4, 5), lambda a, b, c: a + b + c),
    (layers.Subtract, {}, [(4, 5)] * 2, (4, 5), lambda a, b: a - b),
    (layers.Multiply, {}, [(4, 5), (4, 1)], (4, 5), lambda a, b: a * b),
    (layers.Average, {}, [(4, 5)] * 3, (4, 5), lambda a, b, c: (a + b + c) / 3),
    (layers.Maximum, {}, [(4, 5)] * 2, (4, 5), np.maximum),
    (layers.Minimum, {}, [(4, 5)] * 2, (4, 5), np.minimum),
    # Lower-rank inputs get size-1 axes after the batch axis, as in Keras.
    (layers.Add, {}, [(4, 3, 5), (4, 5)], (4, 3, 5), lambda a, b: a + b[:, None, :]),
    (layers.Concatenate, {}, [(4, 2), (4, 3)], (4, 5),
     lambda a, b: np.concatenate([a, b], -1)),
    (layers.Concatenate, {"axis": 1}, [(4, 2, 3), (4, 1, 3)], (4, 3, 3),
     lambda a, b: np.concatenate([a, b], 1)),
    (layers.Dot, {"axes": 1}, [(4, 5), (4, 5)], (4, 1),
     lambda a, b: np.sum(a * b, axis=1, keepdims=True)),
    (layers.Dot, {"axes": 2}, [(4, 3, 5), (4, 6, 5)], (4, 3, 6),
     lambda a, b: np.einsum("btd,bsd->bts", a, b)),
    (layers.Dot, {"axes": (1, 2)}, [(4, 5, 3), (4, 2, 5)], (4, 3, 2),
     lambda a, b: np.einsum("bdt,bsd->bts", a, b)),
    (layers.Dot, {"axes": -1, "normalize": True}, [(4, 5), (4, 5)], (4, 1),
     lambda a, b: np.sum(a * b, 1, keepdims=True) / np.linalg.norm(a, axis=1, keepdims=True)
     / np.linalg.norm(b, axis=1, keepdims=True)),
])
def test_layer(cls, kwargs, shapes, out_shape, reference):
    data = _data(*shapes)
    # Keras: merge layers have no weights.
    layer = run_layer_test(cls, kwargs, input_data=data, expected_output_shape=out_shape,
                           expected_num_trainable_weights=0, expected_num_params=0,
                           run_training_check=False)
    np.testing.assert_allclose(layer(data).numpy(), reference(*[d.astype(np.float64)
                                                                for d in data]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn, cls", [
    (layers.add, layers.Add), (layers.subtract, layers.Subtract),
    (layers.multiply, layers.Multiply), (layers.average, layers.Average),
    (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum),
    (layers.concatenate, layers.Concatenate), (layers.dot, layers.Dot),
])
def test_functional_forms_build_the_layer(fn, cls):
    a, b = lamina.Input((3,)), lamina.Input((3,))
    out = fn([a, b]) if fn is not layers.dot else fn([a, b], axes=1)
    assert isinstance(out.node.operation, cls)
    model = lamina.Model([a, b], out)
    x, y = _data((2, 3), (2, 3))
    np.testing.assert_allclose(model.predict([x, y], verbose=0),
                               cls(**({"axes": 1} if cls is layers.Dot else {}))([x, y]).numpy())


@pytest.mark.parametrize("layer, shapes, message", [
    (layers.Add(), [(2, 3), (2, 4)], "Inputs have incompatible shapes"),
    (layers.Add(), [(2, 3), (5, 3)], "different batch sizes"),
    (layers.Subtract(), [(2, 3)] * 3, "exactly 2 inputs"),
    (layers.Concatenate(), [(2, 3, 4), (2, 2, 4)], "matching shapes except for the "
                                                   "concatenation axis"),
    (layers.Dot(axes=1), [(2, 3), (2, 4)], r"Incompatible input shapes: axis values 3"),
    (layers.Dot(axes=1), [(2, 3)] * 3, "list of 2 inputs"),
])
def test_shape_validation(layer, shapes, message):
    with pytest.raises(ValueError, match=message):
        layer(_data(*shapes))


def test_merge_needs_a_list():
    with pytest.raises(ValueError, match="list of inputs"):
        layers.Add()(np.ones((2, 3)))


def test_symbolic_shape_validation():
    with pytest.raises(ValueError, match="incompatible shapes"):
        layers.Add()([lamina.Input((3,)), lamina.Input((4,))])


def _masked(x, mask):
    t = Tensor(x)
    t._keras_mask = mask
    return t


def test_elementwise_merge_mask_is_the_logical_and():
    x = np.ones((2, 3, 4), dtype="float32")
    m1 = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    m2 = np.array([[1, 0, 0], [1, 1, 1]], dtype=bool)
    out = layers.Add()([_masked(x, m1), _masked(x, m2)])
    np.testing.assert_array_equal(out._keras_mask, m1 & m2)
    assert getattr(layers.Add()([Tensor(x), Tensor(x)]), "_keras_mask", None) is None


def test_concatenate_mask_follows_keras():
    x = np.ones((2, 3, 4), dtype="float32")
    m1 = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    # Along the feature axis: inputs without a mask count as all-True, then OR over it.
    out = layers.Concatenate()([_masked(x, m1), Tensor(x)])
    np.testing.assert_array_equal(out._keras_mask, np.ones((2, 3), dtype=bool))
    # Along time: the masks are concatenated.
    m2 = np.array([[0, 1, 1], [1, 1, 0]], dtype=bool)
    out = layers.Concatenate(axis=1)([_masked(x, m1), _masked(x, m2)])
    np.testing.assert_array_equal(out._keras_mask, np.concatenate([m1, m2], axis=1))


def test_residual_block_trains_in_a_model():
    inp = lamina.Input((4,))
    h = layers.Dense(4)(inp)
    out = layers.Dense(1)(layers.add([inp, h]))
    model = lamina.Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    x = RNG.standard_normal((32, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
