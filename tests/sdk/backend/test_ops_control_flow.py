"""Keras's control-flow ops and function transforms: values against plain Python loops,
gradients through what ran against float64 central differences, ``jvp`` against central
differences, and the ops as nodes of functional models."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import ops
from lamina.backend import Tensor, gradients
from lamina.ops import control_flow as cf
from lamina.ops import transforms as tr
from lamina.testing import check_gradients

RNG = np.random.default_rng(5)


def rn(*shape):
    return RNG.standard_normal(shape)


def _scan_fn(x, h):
    # An RNN-like recurrence: carry h, emit tanh(h * x_t).
    def step(carry, xt):
        new = ops.tanh(carry * xt + 0.5 * carry)
        return new, new * xt
    carry, ys = cf.scan(step, h, x)
    return ops.concatenate([ys, ops.expand_dims(carry, 0)], axis=0)


def _while_fn(x):
    # Doubles until the sum exceeds 10: the number of iterations depends on the data.
    return cf.while_loop(lambda v: ops.sum(ops.abs(v)) < 10.0, lambda v: v * 2.0 + ops.sin(v),
                         x, maximum_iterations=6)


GRAD_CASES = [
    pytest.param(_scan_fn, [rn(4, 3), rn(3)], id="scan"),
    pytest.param(lambda x, h: cf.scan(lambda c, xt: (c * xt, c + xt), h, x, reverse=True)[1],
                 [rn(4, 2), rn(2)], id="scan[reverse]"),
    pytest.param(lambda x: cf.scan(lambda c, _: (ops.sin(c) * 1.5, None), x, length=3)[0],
                 [rn(3)], id="scan[length]"),
    pytest.param(_while_fn, [rn(3) * 0.5], id="while_loop"),
    pytest.param(lambda x: cf.fori_loop(0, 3, lambda i, v: v * ops.cos(v) + i, x), [rn(2, 2)],
                 id="fori_loop"),
    pytest.param(lambda x: cf.map(lambda r: ops.sum(r * r) * r, x), [rn(3, 2)], id="map"),
    pytest.param(lambda x, y: cf.vectorized_map(lambda e: ops.dot(e[0], e[1]), [x, y]),
                 [rn(3, 2), rn(3, 2)], id="vectorized_map"),
    pytest.param(lambda x: cf.associative_scan(lambda a, b: a * b, x, axis=1), [rn(2, 4)],
                 id="associative_scan"),
    pytest.param(lambda x: cf.associative_scan(lambda a, b: ops.maximum(a, b) + 0.1 * b, x,
                                               reverse=True), [rn(4)], id="associative_scan[rev]"),
    pytest.param(lambda x: cf.cond(ops.sum(x) > 0, lambda: ops.exp(x), lambda: ops.square(x)),
                 [np.abs(rn(3))], id="cond[true]"),
    pytest.param(lambda x: cf.cond(ops.sum(x) > 0, lambda: ops.exp(x), lambda: ops.square(x)),
                 [-np.abs(rn(3))], id="cond[false]"),
    pytest.param(lambda x: cf.switch(1, [ops.exp, ops.sin, ops.cos], x), [rn(3)], id="switch"),
]


@pytest.mark.parametrize("fn,inputs", GRAD_CASES)
def test_gradient_flows_through_what_ran(fn, inputs):
    assert check_gradients(fn, inputs) <= 1e-6


def test_values_match_python_loops():
    x = rn(5, 3)
    carry, ys = cf.scan(lambda c, xt: (c + xt, c * xt), np.zeros(3), x)
    c, want = np.zeros(3), []
    for row in x:
        want.append(c * row)
        c = c + row
    # float64 inputs become floatx (float32) Tensors, as every op's do.
    np.testing.assert_allclose(carry.data, c, rtol=1e-6)
    np.testing.assert_allclose(ys.data, np.stack(want), rtol=1e-6)
    np.testing.assert_allclose(cf.associative_scan(ops.add, x, axis=0).data, np.cumsum(x, 0),
                               rtol=1e-6)
    np.testing.assert_allclose(cf.associative_scan(ops.add, x, reverse=True).data,
                               np.cumsum(x[::-1], 0)[::-1], rtol=1e-6)
    i, v = cf.while_loop(lambda i, v: i < 4, lambda i, v: (i + 1, v * 2), (0, np.ones(2)))
    assert int(i.data) == 4 and np.all(v.data == 16)
    assert int(cf.while_loop(lambda i: i < 100, lambda i: i + 1, 0,
                             maximum_iterations=7).data) == 7
    assert cf.fori_loop(2, 5, lambda i, v: v + i, 0) == 9
    assert cf.switch(-3, [lambda: "a", lambda: "b"]) == "a"
    assert cf.switch(9, [lambda: "a", lambda: "b"]) == "b"
    np.testing.assert_allclose(cf.map(lambda r: r * 2, x).data, x * 2, rtol=1e-6)
    # Structures: dict carries and tuple xs.
    carry, ys = cf.scan(lambda c, t: ({"s": c["s"] + t[0] * t[1]}, t[0]), {"s": 0.0},
                        (x[:, 0], x[:, 1]))
    np.testing.assert_allclose(carry["s"].data, np.sum(x[:, 0] * x[:, 1]), rtol=1e-6)


def test_argument_errors_name_the_argument():
    with pytest.raises(TypeError, match="f=3"):
        cf.scan(3, 0.0, np.ones(2))
    with pytest.raises(ValueError, match="unroll=0"):
        cf.scan(lambda c, x: (c, x), 0.0, np.ones(2), unroll=0)
    with pytest.raises(ValueError, match="length"):
        cf.scan(lambda c, x: (c, x), 0.0)


def test_custom_gradient_replaces_the_gradient():
    @tr.custom_gradient
    def log1pexp(x):
        e = ops.exp(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1, e))

        return ops.log(1 + e), grad

    x = Tensor(np.array([-2.0, 0.0, 50.0, 100.0]), requires_grad=True)
    y = log1pexp(x)
    np.testing.assert_allclose(y.data[:3], np.log1p(np.exp(x.data[:3])))
    (g,) = gradients(ops.sum(y), [x])
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-x.data)))  # finite where autodiff is nan

    @tr.custom_gradient
    def scaled_product(a, b, k):
        return a * b * k, lambda up: (up * 2.0, None, None)

    a, b = (Tensor(np.ones(2), requires_grad=True) for _ in range(2))
    ga, gb = gradients(ops.sum(scaled_product(a, b, 3.0)), [a, b])
    np.testing.assert_allclose(ga, [2.0, 2.0])
    np.testing.assert_allclose(gb, [0.0, 0.0])
    with pytest.raises(ValueError, match="one gradient per"):
        gradients(ops.sum(tr.custom_gradient(lambda a, b: (a * b, lambda g: g))(a, b)), [a])


def _central_jvp(fun, primals, tangents, eps=1e-6):
    plus = fun(*[p + eps * t for p, t in zip(primals, tangents)])
    minus = fun(*[p - eps * t for p, t in zip(primals, tangents)])
    return (np.asarray(plus.data) - np.asarray(minus.data)) / (2 * eps)


@pytest.mark.parametrize("fun,shapes", [
    (lambda x: ops.sin(x) * ops.exp(x), [(3,)]),
    (lambda a, b: ops.matmul(ops.tanh(a), b), [(2, 3), (3, 2)]),
    (lambda x: ops.softmax(x, axis=-1), [(2, 4)]),
])
def test_jvp_matches_central_differences(fun, shapes):
    primals = [rn(*s) for s in shapes]
    tangents = [rn(*s) for s in shapes]
    out, tangent_out = tr.jvp(fun, primals, tangents)
    np.testing.assert_allclose(out.data, fun(*primals).data, rtol=1e-12)
    np.testing.assert_allclose(tangent_out.data, _central_jvp(fun, primals, tangents),
                               rtol=1e-6, atol=1e-8)


def test_jvp_structures_and_aux():
    x, t = rn(3), rn(3)
    (out, tangent, aux) = tr.jvp(lambda v: ((ops.square(v), ops.sum(v)), "aux"), [x], [t],
                                 has_aux=True)
    assert aux == "aux"
    np.testing.assert_allclose(tangent[0].data, 2 * x * t)
    np.testing.assert_allclose(tangent[1].data, np.sum(t))
    _, constant = tr.jvp(lambda v: ops.ones((2,)), [x], [t])
    np.testing.assert_array_equal(constant.data, [0.0, 0.0])
    with pytest.raises(ValueError, match="primals"):
        tr.jvp(ops.sin, x, t)
    assert ops.linalg.jvp is ops.jvp


def test_control_flow_inside_functional_models():
    import lamina

    inputs = lamina.Input((4, 3))

    def step(carry, xt):
        return carry + xt, carry * xt

    carry, ys = ops.scan(step, ops.zeros((3,)), ops.transpose(inputs, (1, 0, 2)))
    mapped = ops.map(lambda r: ops.sum(r), inputs)
    chosen = ops.cond(True, lambda: inputs * 2.0, lambda: inputs)
    model = lamina.Model(inputs, [ops.transpose(ys, (1, 0, 2)), mapped, chosen])
    x = rn(2, 4, 3).astype("float32")
    got = model.predict(x, verbose=0)
    want_ys = np.stack([np.concatenate([np.zeros((1, 3)), np.cumsum(x[b], 0)[:-1]]) * x[b]
                        for b in range(2)])
    np.testing.assert_allclose(got[0], want_ys, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], x.sum((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(got[2], 2 * x, rtol=1e-6)


def test_jvp_and_custom_gradient_inside_functional_models():
    import lamina

    inputs = lamina.Input((2,))
    out, tangent = ops.jvp(lambda a: ops.sin(a) * a, [inputs], [np.ones((1, 2), "float32")])
    model = lamina.Model(inputs, [out, tangent])
    x = rn(3, 2).astype("float32")
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got[0], np.sin(x) * x, rtol=1e-5)
    np.testing.assert_allclose(got[1], np.cos(x) * x + np.sin(x), rtol=1e-5, atol=1e-6)

    @tr.custom_gradient
    def frozen(v):
        return v, lambda g: g * 0.0

    inputs = lamina.Input((3,))
    first = lamina.layers.Dense(4)
    outputs = lamina.layers.Dense(1)(frozen(first(inputs)))
    model = lamina.Model(inputs, outputs)
    model.compile("sgd", "mse")
    before = [w.copy() for w in first.get_weights()]
    model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0)
    for b, a in zip(before, first.get_weights()):
        np.testing.assert_array_equal(a, b)  # the custom gradient stopped at `frozen`
