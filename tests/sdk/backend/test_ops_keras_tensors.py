"""Keras's ops outside the numpy namespace on symbolic KerasTensors: each call records a
node of the functional graph, and the model's output equals the eager call's."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import ops

RNG = np.random.default_rng(21)


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


CASES = [
    ("associative_scan", (4, 3), lambda x: ops.associative_scan(ops.add, x, axis=1)),
    ("fori_loop", (3,), lambda x: ops.fori_loop(0, 3, lambda i, v: v * 1.5 + i, x)),
    ("while_loop", (3,), lambda x: ops.while_loop(lambda v: ops.all(v < 100.0),
                                                  lambda v: v * 2.0 + 1.0, x,
                                                  maximum_iterations=4)),
    ("switch", (3,), lambda x: ops.switch(1, [ops.sin, ops.cos], x)),
    ("vectorized_map", (3,), lambda x: ops.vectorized_map(lambda r: r * 2.0, x)),
    ("custom_gradient", (3,),
     lambda x: ops.custom_gradient(lambda v: (ops.exp(v), lambda g: g))(x)),
    ("cdist", (4, 3), lambda x: ops.cdist(x, x)),
    ("erfinv", (3,), lambda x: ops.erfinv(ops.tanh(x))),
    ("in_top_k", (3,), lambda x: ops.in_top_k(np.array([0, 1]), x, 2)),
    ("saturate_cast", (3,), lambda x: ops.saturate_cast(x * 300.0, "uint8")),
    ("polar", (3,), lambda x: ops.polar(x, x)),
    ("segment_sum", (4, 3), lambda x: ops.segment_sum(ops.transpose(x, (1, 0, 2)),
                                                      np.array([0, 1, 1, 0]), 2)),
    ("scatter_update", (3,), lambda x: ops.scatter_update(x, np.array([[0, 1]]),
                                                          np.array([5.0], "float32"))),
    ("slice_update", (3,), lambda x: ops.slice_update(x, (0, 1), np.ones((1, 2), "float32"))),
    ("fft", (4,), lambda x: ops.fft((x, x * 2.0))),
    ("fft2", (2, 4), lambda x: ops.fft2((x, x))),
    ("ifft2", (2, 4), lambda x: ops.ifft2((x, x))),
    ("irfft", (5,), lambda x: ops.irfft((x, x), 8)),
    ("istft", (5, 5), lambda x: ops.istft((x, x), 8, 4, 8)),
    ("extract_sequences", (10,), lambda x: ops.extract_sequences(x, 4, 2)),
    ("view_as_real", (3,), lambda x: ops.view_as_real(ops.polar(x, x))),
    ("view_as_complex", (3, 2), lambda x: ops.view_as_complex(x)),
    ("svd", (3, 3), lambda x: ops.svd(x, compute_uv=False)),
    ("lstsq", (4, 3), lambda x: ops.lstsq(x[0], np.ones((4,), "float32"))),
]


@pytest.mark.parametrize("name,shape,fn", CASES, ids=[c[0] for c in CASES])
def test_op_records_a_node_and_replays(name, shape, fn):
    inputs = lamina.Input(shape)
    outputs = fn(inputs)
    assert all(isinstance(o, lamina.KerasTensor) for o in _flat(outputs)), name
    model = lamina.Model(inputs, _flat(outputs))
    x = RNG.standard_normal((2,) + shape).astype("float32")
    got = model.predict(x, verbose=0)
    want = _flat(fn(ops.convert_to_tensor(x)))
    for g, w in zip(got if isinstance(got, list) else [got], want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)
