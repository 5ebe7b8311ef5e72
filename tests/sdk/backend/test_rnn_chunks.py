"""SimpleRNN and GRU backward over several chunks of steps (weight gradients folded in
chunk by chunk, possibly on a pool worker): float64 gradients and bit-identical
results with or without the pool."""

import numpy as np
import pytest

from lamina.backend import blas_threads, rnn, rnn_common, threads
from lamina.backend.tensor import Tensor
from lamina.testing import check_gradients

_KINDS = {
    "simple": (rnn.SimpleRNNSequence, 1, {}),
    "gru": (rnn.GRUSequence, 3, {"reset_after": True}),
    "gru_reset_before": (rnn.GRUSequence, 3, {"reset_after": False}),
}


def _case(kind, rng, batch=3, steps=2 * rnn_common.CHUNK_STEPS + 1, features=3, units=2):
    _, k, extra = _KINDS[kind]
    bias_shape = (2, k * units) if extra.get("reset_after") else (k * units,)
    return [rng.standard_normal((batch, steps, features)),
            rng.standard_normal((features, k * units)) * 0.5,
            rng.standard_normal((units, k * units)) * 0.5,
            rng.standard_normal(bias_shape) * 0.3,
            rng.standard_normal((batch, units))]


@pytest.mark.parametrize("kind", list(_KINDS))
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_over_several_chunks(kind, masked):
    rng = np.random.default_rng(0)
    fn, _, extra = _KINDS[kind]
    args = _case(kind, rng)
    mask = rng.random(args[0].shape[:2]) > 0.3 if masked else None
    rmask = (rng.random(args[4].shape) > 0.5) * 2.0
    kw = dict(mask=mask, recurrent_mask=rmask, go_backwards=masked, return_sequences=True,
              **extra)
    check_gradients(lambda *a: fn.apply(*a, **kw), args)


@pytest.mark.skipif(not blas_threads._controller(), reason="no OpenBLAS found by threadpoolctl")
@pytest.mark.parametrize("kind", list(_KINDS))
def test_bit_identical_with_or_without_the_second_thread(kind):
    rng = np.random.default_rng(1)
    fn, _, extra = _KINDS[kind]
    args = [a.astype(np.float32) for a in _case(kind, rng, batch=16, steps=11, features=5,
                                                   units=8)]
    g = rng.standard_normal((16, 11, 8)).astype(np.float32)

    def step():
        out = fn.apply(*[Tensor(a, requires_grad=True) for a in args],
                       return_sequences=True, **extra)
        return [out.data, *out._ctx.backward(g)]

    try:
        threads.set_thread_policy(1)
        alone = step()
        threads.set_thread_policy("auto")
        together = step()
    finally:
        threads.set_thread_policy("auto")
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)
