"""The optimizer's plain fast path: gradients gathered into the flat buffer part by part."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina.optimizers.buffers import gather


@pytest.mark.parametrize("lo, hi", [(0, 17), (3, 9), (5, 5), (4, 12), (11, 17), (0, 1)])
def test_gather_is_a_range_of_concatenate(lo, hi):
    pieces = [np.arange(4.0), np.zeros(0), np.arange(10.0, 17.0), np.arange(20.0, 26.0)]
    offsets = np.concatenate([[0], np.cumsum([p.size for p in pieces])]).tolist()
    out = np.full(17, -1.0)
    gather(pieces, offsets, out, lo, hi)
    expected = np.full(17, -1.0)
    expected[lo:hi] = np.concatenate(pieces)[lo:hi]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "adagrad", "adamax", "lion"])
def test_parts_update_as_one_whole_buffer_pass(name, monkeypatch):
    from lamina.optimizers import flat_apply

    calls = []
    monkeypatch.setattr(flat_apply, "gather", lambda *args: calls.append(args) or gather(*args))
    cls = type(lamina.optimizers.get(name))

    class WholeBuffer(cls):
        def update_step(self, gradient, variable, learning_rate):  # not allow-listed
            super().update_step(gradient, variable, learning_rate)

    rng = np.random.default_rng(2)
    shapes = [(784, 512), (512,), (0, 3), (512, 10)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    results = []
    for klass in (cls, WholeBuffer):
        variables = [lamina.Variable(v.copy()) for v in values]
        opt = klass(learning_rate=0.01)
        for step in range(3):
            opt.apply([np.cos(v * (step + 1)) for v in values], variables)  # float64 grads
        results.append([np.asarray(v.numpy()).tobytes() for v in variables]
                       + [np.asarray(v.numpy()).tobytes() for v in opt.variables])
        if klass is cls:
            gathered = len(calls)
            assert gathered == 3 * len(next(iter(opt._parts_cache.values()))[1]) > 3
        else:
            assert len(calls) == gathered  # the whole-buffer class gathers nothing
    assert results[0] == results[1]
