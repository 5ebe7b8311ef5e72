"""autodiff.gradient_destinations: backward may write a source's gradient into an
offered array (only with exactly one use), and the walk returns it uncopied."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.backend import autodiff
from lamina.backend.autodiff import Function, gradient_destination, gradient_destinations, gradients
from lamina.backend.nn import Dense, ReluDense
from lamina.backend.tensor import Tensor, Variable

RNG = np.random.default_rng(0)
X = Tensor(RNG.normal(size=(64, 30)).astype(np.float32))


def _mlp():
    k1 = Variable(RNG.normal(size=(30, 20)).astype(np.float32))
    b1 = Variable(RNG.normal(size=20).astype(np.float32))
    k2 = Variable(RNG.normal(size=(20, 5)).astype(np.float32))
    b2 = Variable(RNG.normal(size=5).astype(np.float32))
    return [k1, b1, k2, b2]


def _loss(v):
    h = ReluDense.apply(X, v[0], v[1])
    return (Dense.apply(h, v[2], v[3]) ** 2).sum()


def _buffers(variables):
    flat = np.full(sum(v.data.size for v in variables) + 1, np.nan, np.float32)
    views, at = [], 1  # an odd offset: views need not be aligned to 8 bytes
    for v in variables:
        views.append(flat[at:at + v.data.size].reshape(v.data.shape))
        at += v.data.size
    return flat, views


def test_dense_writes_kernel_and_bias_gradients_into_the_offered_arrays_bit_for_bit():
    variables = _mlp()
    plain = gradients(_loss(variables), variables)
    _, views = _buffers(variables)
    with gradient_destinations(zip(variables, views)):
        written = gradients(_loss(variables), variables)
    assert [g is v for g, v in zip(written, views)] == [True] * 4
    for a, b in zip(plain, written):
        assert a.tobytes() == b.tobytes()


def test_a_source_with_two_uses_is_not_offered():
    variables = _mlp()

    def loss(v):  # k1 and b1 used twice
        h = ReluDense.apply(X, v[0], v[1]) + ReluDense.apply(X, v[0], v[1]) * 0.5
        return (Dense.apply(h, v[2], v[3]) ** 2).sum()

    plain = gradients(loss(variables), variables)
    _, views = _buffers(variables)
    with gradient_destinations(zip(variables, views)):
        written = gradients(loss(variables), variables)
    assert [g is v for g, v in zip(written, views)] == [False, False, True, True]
    assert np.isnan(views[0]).all() and np.isnan(views[1]).all()  # never touched
    for a, b in zip(plain, written):
        assert a.tobytes() == b.tobytes()


def test_offers_need_the_shape_and_dtype_and_serve_one_walk_only():
    variables = _mlp()
    _, views = _buffers(variables)
    wrong = [np.zeros((20, 30), np.float32), views[1].astype(np.float64)]
    with gradient_destinations(zip(variables, wrong + views[2:])):
        first = gradients(_loss(variables), variables)
        second = gradients(_loss(variables), variables)  # must not overwrite first's
    assert [g is v for g, v in zip(first, wrong + views[2:])] == [False, False, True, True]
    assert not any(np.shares_memory(g, v) for g, v in zip(second, views))
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()
    assert gradient_destination(variables[0]) is None  # nothing offered outside a walk


class _WritesThenFails(Function):
    """Writes its input's gradient into the offered array, then raises (a failure
    half-way through a backward)."""

    def forward(self, x):
        self.x = x
        return x * 2.0

    def backward(self, g):
        out = gradient_destination(self.parents[0])
        if out is not None:
            out[...] = 123.0
        raise RuntimeError("backward failed")


def test_a_failed_walk_returns_nothing_and_the_next_walk_does_not_read_the_leftovers():
    v = Variable(np.ones(3, np.float32))
    dest = np.zeros(3, np.float32)
    with gradient_destinations([(v, dest)]):
        with pytest.raises(RuntimeError, match="backward failed"):
            gradients(_WritesThenFails.apply(v).sum(), [v])
    assert autodiff._state.offered is None  # the failed walk's offers are gone
    with gradient_destinations([(v, dest)]):
        (grad,) = gradients((v * 3.0).sum(), [v])  # an op that ignores the offer
    assert grad is not dest and grad.tolist() == [3.0] * 3


def test_a_source_listed_twice_gets_the_destination_once_and_a_copy():
    variables = _mlp()
    _, views = _buffers(variables)
    with gradient_destinations(zip(variables, views)):
        first, again = gradients(_loss(variables), [variables[0], variables[0]])
    assert first is views[0] and again is not views[0]
    assert first.tobytes() == again.tobytes()
