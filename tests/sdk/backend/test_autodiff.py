"""Autodiff mechanics: accumulation, no_grad, unrelated sources, dtypes, deep graphs."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import ops
from lamina.backend import (
    Function,
    Tensor,
    Variable,
    enable_grad,
    gradients,
    is_recording,
    no_grad,
    unbroadcast,
)
from lamina.testing import check_gradients


class Fork(Function):
    """``a * b`` whose backward hands the very same array to both parents."""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        return g, g


def test_tensor_used_twice_accumulates():
    x = Variable([1.0, -2.0, 3.0])
    (g,) = gradients(ops.sum(x * x + x), [x])
    np.testing.assert_array_equal(g, 2 * x.data + 1)


def test_x_plus_x_has_gradient_two():
    x = Variable(np.ones((2, 3)))
    (g,) = gradients(ops.sum(x + x), [x])
    np.testing.assert_array_equal(g, np.full((2, 3), 2.0))


def test_backward_that_shares_one_array_between_parents():
    # Both parents receive the same ndarray; accumulating into one must not leak into
    # the other (in-place += on a shared array would double the second gradient).
    x, y = Variable([1.0, 2.0]), Variable([3.0, 4.0])
    z = Fork.apply(x, y)
    loss = ops.sum(z * np.array([1.0, 10.0]) + x)
    gx, gy = gradients(loss, [x, y])
    np.testing.assert_array_equal(gx, [2.0, 11.0])
    np.testing.assert_array_equal(gy, [1.0, 10.0])


def test_shared_array_same_parent_twice():
    x = Variable([1.0, 2.0])
    z = Fork.apply(x, x)
    (g,) = gradients(ops.sum(z + z), [x])
    np.testing.assert_array_equal(g, [4.0, 4.0])


def test_diamond_graph_accumulates_every_path():
    x = Variable(np.array([0.5, -1.5]))
    a = ops.exp(x)
    b = ops.sin(x)
    loss = ops.sum(a * b + a + b)
    (g,) = gradients(loss, [x])
    v = x.data
    expected = np.exp(v) * np.sin(v) + np.exp(v) * np.cos(v) + np.exp(v) + np.cos(v)
    np.testing.assert_allclose(g, expected, rtol=1e-6)


def test_gradients_are_independent_writable_arrays():
    # x and y would otherwise receive the same upstream array (Add hands g to both), and
    # sum's gradient is a read-only broadcast view; optimizers update gradients in place.
    x, y = Variable(np.ones(3)), Variable(np.ones(3))
    gx, gy = gradients(ops.sum(x + y), [x, y])
    assert gx.flags.writeable and gy.flags.writeable
    gx *= 5.0
    np.testing.assert_array_equal(gy, np.ones(3))


def test_no_grad_records_nothing():
    x = Variable([1.0, 2.0])
    with no_grad():
        assert not is_recording()
        y = ops.sum(ops.exp(x) * x)
        with enable_grad():
            assert is_recording()
        assert not is_recording()
    assert is_recording()
    assert y._ctx is None and not y.requires_grad
    (g,) = gradients(y, [x])
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_no_grad_restores_state_after_exception():
    with pytest.raises(RuntimeError), no_grad():
        raise RuntimeError("boom")
    assert is_recording()


def test_constants_are_not_recorded():
    y = ops.exp(Tensor(np.ones(3)))
    assert y._ctx is None and not y.requires_grad


def test_unrelated_sources_get_zeros():
    x, unused = Variable([1.0, 2.0]), Variable(np.ones((2, 2)))
    frozen = Variable([3.0, 4.0], trainable=False)
    gx, gu, gf = gradients(ops.sum(x * frozen), [x, unused, frozen])
    np.testing.assert_array_equal(gx, [3.0, 4.0])
    np.testing.assert_array_equal(gu, np.zeros((2, 2)))
    np.testing.assert_array_equal(gf, np.zeros(2))
    assert gu.dtype == np.float32


def test_gradients_of_a_constant_target_are_zeros():
    x = Variable([1.0])
    (g,) = gradients(Tensor(np.array(2.0)), [x])
    np.testing.assert_array_equal(g, [0.0])


def test_gradients_rejects_non_tensor_target():
    with pytest.raises(TypeError, match="target"):
        gradients(np.ones(2), [Variable([1.0])])


def test_output_gradient_seeds_the_walk():
    x = Variable([1.0, 2.0, 3.0])
    (g,) = gradients(x * 2.0, [x], output_gradient=np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(g, [2.0, 0.0, -2.0])


def test_tensor_backward_fills_grad_and_accumulates():
    w, b = Variable([[1.0, 2.0], [3.0, 4.0]]), Variable([0.5, -0.5])
    x = np.array([[1.0, 1.0]])
    loss = ops.sum(ops.matmul(x, w) + b)
    loss.backward()
    np.testing.assert_array_equal(w.grad, np.ones((2, 2)))
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    ops.sum(b * 3.0).backward()
    np.testing.assert_array_equal(b.grad, [4.0, 4.0])


def test_backward_ignores_frozen_variables():
    w, frozen = Variable([1.0]), Variable([2.0], trainable=False)
    ops.sum(w * frozen).backward()
    assert w.grad is not None and frozen.grad is None


def test_float32_in_float32_gradients():
    x = Variable(np.array([[0.5, -1.0], [2.0, 0.1]], dtype=np.float32))
    loss = ops.mean(ops.softmax(ops.tanh(x) * 3.0) ** 2)
    assert loss.dtype == "float32"
    (g,) = gradients(loss, [x])
    assert g.dtype == np.float32


def test_float64_stays_float64():
    x = Variable(np.array([0.5, -1.0, 2.0]), dtype="float64")
    loss = ops.sum(ops.sigmoid(x) * ops.log(ops.abs(x)) + ops.mean(x))
    assert loss.dtype == "float64"
    (g,) = gradients(loss, [x])
    assert g.dtype == np.float64


def test_cast_gradient_has_the_source_dtype():
    x = Variable(np.array([1.0, 2.0], dtype=np.float32))
    y = ops.cast(x, "float64") * np.array([3.0, 4.0])
    assert y.dtype == "float64"
    (g,) = gradients(ops.sum(y), [x])
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [3.0, 4.0])


@pytest.mark.parametrize("labels", [np.array([[0.2, 0.8], [1.0, 0.0]]), np.array([1, 0])])
def test_fused_cross_entropy_keeps_logits_dtype_with_float64_labels(labels):
    logits = Variable(np.array([[0.5, -1.0], [2.0, 0.1]], dtype=np.float32))
    loss = ops.softmax_cross_entropy(logits, labels, sparse=labels.ndim == 1)
    assert loss.dtype == "float32"
    (g,) = gradients(ops.sum(loss), [logits])
    assert g.dtype == np.float32


def test_sigmoid_cross_entropy_keeps_logits_dtype_with_float64_labels():
    logits = Variable(np.array([0.5, -1.0], dtype=np.float32))
    loss = ops.sigmoid_cross_entropy(logits, np.array([1.0, 0.0]))
    assert loss.dtype == "float32"
    (g,) = gradients(ops.sum(loss), [logits])
    assert g.dtype == np.float32


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = Variable([1.0])
    y = x
    for _ in range(10_000):
        y = y + 1.0
    (g,) = gradients(ops.sum(y * y), [x])
    np.testing.assert_allclose(g, [2 * 10_001.0])
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0])
    del y  # freeing a 10,000-deep graph must not overflow the C stack either


def test_deep_chain_of_many_ops_gradient():
    x = Variable(np.array([0.3, -0.2]), dtype="float64")
    y = x
    for _ in range(2_500):
        y = ops.tanh(y) * 1.0001 + 0.0
    (g,) = gradients(ops.sum(y), [x])
    expected = np.ones(2)
    v = x.data.copy()
    for _ in range(2_500):
        expected = expected * (1 - np.tanh(v) ** 2) * 1.0001
        v = np.tanh(v) * 1.0001
    np.testing.assert_allclose(g, expected, rtol=1e-10)


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.ones((2, 3, 4))
    np.testing.assert_array_equal(unbroadcast(g, (4,)), np.full(4, 6.0))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(unbroadcast(g, ()), np.array(24.0))
    assert unbroadcast(g, (2, 3, 4)) is g


def test_walk_asserts_gradient_shapes():
    class Wrong(Function):
        def forward(self, a):
            return a.sum()

        def backward(self, g):
            return (np.ones(7),)

    x = Variable(np.ones(3))
    with pytest.raises((AssertionError, ValueError)):
        gradients(Wrong.apply(x), [x])


def test_check_gradients_catches_a_wrong_vjp():
    class BadSquare(Function):
        def forward(self, a):
            self.a = a
            return a * a

        def backward(self, g):
            return (g * self.a,)  # missing factor 2

    with pytest.raises(AssertionError, match="central differences"):
        check_gradients(lambda x: BadSquare.apply(x), [np.array([1.0, 2.0])])


def test_keras_backend_namespace():
    import lamina as keras

    assert keras.backend.epsilon() == 1e-7
    assert keras.backend.image_data_format() == "channels_last"
    with pytest.raises(ValueError, match="channels_first"):
        keras.backend.set_image_data_format("channels_first")
    keras.utils.clear_session()
    keras.backend.clear_session()
    assert keras.layers.Dense(1).name == "dense"


@pytest.mark.parametrize(("args", "packed"), [
    ((1,), 1), (([1, 2],), ([1, 2],)), ((1, 2), (1, 2)), ((1, 2, 3), (1, 2, 3))])
def test_pack_and_unpack_x_y_sample_weight(args, packed):
    import lamina as keras

    assert keras.utils.pack_x_y_sample_weight(*args) == packed
    unpacked = keras.utils.unpack_x_y_sample_weight(packed)
    assert unpacked == tuple(args) + (None,) * (3 - len(args))
