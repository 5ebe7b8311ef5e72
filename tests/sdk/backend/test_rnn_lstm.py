"""The fused LSTM over several chunks of steps: values, float64 gradients, and results
that do not depend on whether the pool takes part."""

import numpy as np
import pytest

from lamina.backend import autodiff, blas_threads, compiled, rnn_common, rnn_lstm, threads
from lamina.backend.rnn_lstm import LSTMSequence, backward_blocks
from lamina.backend.tensor import Tensor
from lamina.testing import check_gradients
from tests.sdk.backend.lstm_reference import reference as _reference


@pytest.fixture
def numpy_path():
    """Run a test on the numpy path (its backward blocks) whether or not numba is here."""
    with compiled.use_kernels("numpy"):
        yield


def _case(rng, batch=3, steps=2 * rnn_common.CHUNK_STEPS + 1, features=3, units=2):
    return (rng.standard_normal((batch, steps, features)),
            rng.standard_normal((features, 4 * units)) * 0.5,
            rng.standard_normal((units, 4 * units)) * 0.5,
            rng.standard_normal(4 * units) * 0.3,
            rng.standard_normal((batch, units)), rng.standard_normal((batch, units)))


def test_chunks_cover_the_steps_in_loop_order():
    assert rnn_common.chunk_spans(9) == [(0, 4), (4, 8), (8, 9)]
    assert rnn_common.chunk_spans(9, backward=True) == [(8, 9), (4, 8), (0, 4)]
    assert rnn_common.chunk_spans(4) == [(0, 4)]


def test_backward_blocks_cover_the_steps_latest_first_in_equal_parts():
    assert backward_blocks(28) == [(14, 28), (0, 14)]
    assert backward_blocks(rnn_lstm.BLOCK_STEPS) == [(0, rnn_lstm.BLOCK_STEPS)]
    assert backward_blocks(3) == [(0, 3)]
    blocks = backward_blocks(50)[::-1]
    assert blocks[0][0] == 0 and blocks[-1][1] == 50
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    lengths = [hi - lo for lo, hi in blocks]
    assert max(lengths) <= rnn_lstm.BLOCK_STEPS and max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("block_steps", [None, 4])  # one backward block, or three
def test_several_chunks_match_the_step_equations(go_backwards, masked, dropout, block_steps,
                                                 monkeypatch, numpy_path):
    if block_steps:
        monkeypatch.setattr(rnn_lstm, "BLOCK_STEPS", block_steps)
    rng = np.random.default_rng(0)
    x, kernel, rec, bias, h0, c0 = _case(rng)
    mask = rng.random(x.shape[:2]) > 0.3 if masked else None
    rmask = (rng.random(h0.shape) > 0.5) * 2.0 if dropout else None
    kw = dict(mask=mask, recurrent_mask=rmask, go_backwards=go_backwards,
              return_sequences=True)
    packed = LSTMSequence.apply(x, kernel, rec, bias, h0, c0, **kw).data
    seq, h, c = _reference(x, kernel, rec, bias, h0, c0, mask, rmask, go_backwards)
    np.testing.assert_allclose(packed[:, :-1], seq, atol=1e-12)
    np.testing.assert_allclose(packed[:, -1], c, atol=1e-12)
    check_gradients(lambda *a: LSTMSequence.apply(*a, **kw), [x, kernel, rec, bias, h0, c0])


@pytest.mark.parametrize("masked", [False, True])
def test_zero_initial_state_without_its_gradients(masked, kernels):
    # A zero h0 takes the first step's shortcut (only the [x; 1] rows of the GEMM), and
    # without dh0 wanted the backward skips the last recurrent GEMM.
    rng = np.random.default_rng(3)
    x, kernel, rec, bias, h0, c0 = _case(rng)
    zeros = np.zeros_like(h0)
    mask = rng.random(x.shape[:2]) > 0.3 if masked else None
    kw = dict(mask=mask, return_sequences=True)
    packed = LSTMSequence.apply(x, kernel, rec, bias, zeros, c0, **kw).data
    seq, _, c = _reference(x, kernel, rec, bias, zeros, c0, mask, None, False)
    np.testing.assert_allclose(packed[:, :-1], seq, atol=1e-12)
    np.testing.assert_allclose(packed[:, -1], c, atol=1e-12)
    check_gradients(lambda *a: LSTMSequence.apply(*a, zeros, c0, **kw),
                    [x, kernel, rec, bias])
    check_gradients(lambda *a: LSTMSequence.apply(*a, c0, **kw), [x, kernel, rec, bias, zeros])


@pytest.mark.parametrize("activation, recurrent_activation",
                         [("relu", "hard_sigmoid"), ("tanh", "tanh")])
def test_other_activations_over_several_chunks(activation, recurrent_activation):
    rng = np.random.default_rng(1)
    x, kernel, rec, bias, h0, c0 = _case(rng)
    kw = dict(activation=activation, recurrent_activation=recurrent_activation)
    check_gradients(lambda *a: LSTMSequence.apply(*a, **kw), [x, kernel, rec, bias, h0, c0])


def test_inference_forward_equals_the_recorded_forward(kernels):
    rng = np.random.default_rng(2)
    args = [a.astype(np.float32) for a in _case(rng, batch=5, units=4)]
    recorded = LSTMSequence.apply(*[Tensor(a, requires_grad=True) for a in args]).data
    with autodiff.no_grad():
        plain = LSTMSequence.apply(*args).data
    np.testing.assert_array_equal(plain, recorded)


def _train_step(args, g):
    tensors = [Tensor(a, requires_grad=True) for a in args]
    out = LSTMSequence.apply(*tensors, return_sequences=True)
    return [out.data, *out._ctx.backward(g)]


@pytest.mark.skipif(not blas_threads._controller(), reason="no OpenBLAS found by threadpoolctl")
def test_results_are_bit_identical_with_or_without_the_second_thread(kernels):
    rng = np.random.default_rng(3)
    args = [a.astype(np.float32) for a in _case(rng, batch=16, steps=11, features=5,
                                                   units=8)]
    g = rng.standard_normal((16, 12, 8)).astype(np.float32)
    try:
        threads.set_thread_policy(1)
        alone = _train_step(args, g)
        threads.set_thread_policy("auto")
        together = [_train_step(args, g) for _ in range(3)]
    finally:
        threads.set_thread_policy("auto")
    for run in together:
        for a, b in zip(alone, run):
            np.testing.assert_array_equal(a, b)


def test_an_error_in_the_loop_reaches_the_caller():
    def loop():
        yield
        raise RuntimeError("loop failed")

    with pytest.raises(RuntimeError, match="loop failed"):
        rnn_common.pipeline([(0, 1), (1, 2)], loop(), after=lambda lo, hi: None)


@pytest.mark.parametrize("policy", [1, "auto"])
def test_pipeline_prepares_before_and_finishes_after_each_chunk_exactly_once(policy):
    spans = rnn_common.chunk_spans(23)
    done, prepared, finished = [], [], []

    def loop():
        for lo, hi in spans:
            assert all(s in prepared for s in range(lo, hi))
            done.extend(range(lo, hi))
            yield
        done.append("end")

    def after(lo, hi):
        assert all(s in done for s in range(lo, hi))
        finished.extend(range(lo, hi))

    try:
        threads.set_thread_policy(policy)
        rnn_common.pipeline(spans, loop(), lambda lo, hi: prepared.extend(range(lo, hi)),
                            after)
    finally:
        threads.set_thread_policy("auto")
    assert done == [*range(23), "end"]
    assert sorted(prepared) == sorted(finished) == list(range(23))
