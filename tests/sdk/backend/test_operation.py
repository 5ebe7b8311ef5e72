"""``lamina.ops`` and operators on KerasTensors: op nodes of the functional graph."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina import layers, ops
from lamina.ops.operation import FunctionOperation


def _run(inputs, outputs, *data):
    return keras.Model(inputs, outputs).predict(list(data) if len(data) > 1 else data[0],
                                                verbose=0)


def test_operators_and_numpy_on_the_left():
    a = keras.Input(shape=(2,))
    out = (np.float32(3.0) - a) / 2.0 + 1.0 - (-a) ** 2 + abs(a)
    x = np.array([[1.0, -2.0]], dtype="float32")
    np.testing.assert_allclose(_run(a, out, x), (3 - x) / 2 + 1 - x ** 2 + np.abs(x))


def test_getitem_reduction_and_unknown_sizes():
    a = keras.Input(shape=(None, 4))
    first = a[:, 0]
    total = ops.sum(a, axis=1)
    assert first.shape == (None, 4) and total.shape == (None, 4)
    assert ops.shape(a) == (None, None, 4)
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    got = _run(a, [first, total], x)
    np.testing.assert_allclose(got[0], x[:, 0])
    np.testing.assert_allclose(got[1], x.sum(axis=1))


def test_dtypes_follow_the_op():
    ids = keras.Input(shape=(3,), dtype="int32")
    values = keras.Input(shape=(3,))
    best = ops.argmax(values, axis=-1)
    as_float = ops.cast(ids, "float32")
    assert best.dtype == "int32" and best.shape == (None,)  # int32, as Keras
    assert as_float.dtype == "float32"
    got = _run([ids, values], [best, as_float], np.array([[1, 2, 3]]),
               np.array([[0.1, 0.7, 0.2]], dtype="float32"))
    np.testing.assert_array_equal(got[0], [1])
    np.testing.assert_array_equal(got[1], [[1.0, 2.0, 3.0]])


def test_list_outputs_and_keyword_tensors():
    a = keras.Input(shape=(4,))
    left, right = ops.split(a, 2, axis=-1)
    joined = ops.where(ops.greater(left, right), x1=left, x2=right)
    x = np.array([[1.0, 5.0, 3.0, 2.0]], dtype="float32")
    np.testing.assert_allclose(_run(a, joined, x), [[3.0, 5.0]])


def test_op_nodes_are_not_layers_and_not_serialisable():
    a = keras.Input(shape=(2,))
    model = keras.Model(a, layers.Dense(1)(ops.exp(a)))
    assert not any(isinstance(la, FunctionOperation) for la in model.layers)
    assert len(model._nodes) == 2
    with pytest.raises(NotImplementedError, match="ops.exp"):
        model.to_json()


def test_ops_on_data_are_unchanged():
    assert isinstance(ops.add(np.ones(2), 1.0), keras.ops.Tensor)
    assert ops.add.__wrapped__.__name__ == "add"


def test_a_user_operation_computes_on_data_and_traces_on_symbols():
    class ScaleShift(keras.Operation):
        def __init__(self, scale, name=None):
            super().__init__(name=name)
            self.scale = scale

        def call(self, x, shift=0.0):
            return keras.ops.add(keras.ops.multiply(x, self.scale), shift)

    op = ScaleShift(3.0, name="scale_shift")
    np.testing.assert_allclose(op(np.ones((2, 2), dtype="float32"), shift=1.0).numpy(), 4.0)
    inputs = keras.Input(shape=(5,))
    out = op(inputs, shift=2.0)
    assert out.shape == (None, 5) and out.node.operation is op
    model = keras.Model(inputs, out)
    np.testing.assert_allclose(model.predict(np.ones((3, 5), dtype="float32"), verbose=0), 5.0)
    with pytest.raises(ValueError, match="Received: name='a/b'"):
        ScaleShift(1.0, name="a/b")


def test_layers_are_operations_and_function_replays_a_graph():
    assert issubclass(keras.layers.Layer, keras.Operation)
    x = keras.Input(shape=(2,), name="x")
    dense = keras.layers.Dense(3, name="proj")
    y = keras.ops.relu(dense(x))
    fn = keras.Function(x, [y, keras.ops.sum(y, axis=-1)], name="fn")
    assert [op.name for op in fn.operations][:2] == ["x", "proj"]
    data = np.array([[1.0, -2.0]], dtype="float32")
    a, b = fn(data)
    expected = np.maximum(data @ dense.kernel.numpy() + dense.bias.numpy(), 0)
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), expected.sum(-1), rtol=1e-6)
    other = keras.Input(shape=(2,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Function(other, y)
    with pytest.raises(ValueError, match="expects 1 input"):
        fn([data, data])


def test_the_backend_imports_no_graph_code():
    """Layering: lamina.backend (autodiff, tensors, primitives) imports nothing from
    ops/layers/models, not even lazily; symbolic dispatch lives in lamina.ops."""
    import ast
    import pathlib

    backend = pathlib.Path(keras.__file__).parent / "backend"
    found = []
    for path in backend.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names
                      if n.startswith(("lamina.layers", "lamina.ops", "lamina.models"))]
    assert found == []
