"""The LSTM's batch lanes (rnn_lanes.run_lanes): values and float64 gradients with two
lanes, bits that do not depend on the pool, errors and Ctrl-C that stop every lane, and
the scratch-array pool (rnn_buffers)."""

import gc
import threading
import time

import numpy as np
import pytest

from lamina.backend import rnn_buffers, rnn_common, rnn_lanes, threads
from lamina.backend.rnn_lstm import LSTMSequence
from lamina.backend.tensor import Tensor
from lamina.testing import check_gradients
from tests.sdk.backend.interrupt import interrupt_fit
from tests.sdk.backend.lstm_reference import reference as _reference

BATCH = 2 * rnn_lanes.MIN_LANE_BATCH  # the smallest batch cut into two lanes




def _case(rng, batch=BATCH, steps=rnn_common.CHUNK_STEPS + 3, features=2, units=2):
    return [rng.standard_normal((batch, steps, features)),
            rng.standard_normal((features, 4 * units)) * 0.5,
            rng.standard_normal((units, 4 * units)) * 0.5,
            rng.standard_normal(4 * units) * 0.3,
            rng.standard_normal((batch, units)), rng.standard_normal((batch, units))]


def test_lanes_are_fixed_by_the_batch_size():
    assert rnn_lanes.lane_spans(BATCH) == [(0, BATCH // 2), (BATCH // 2, BATCH)]
    assert rnn_lanes.lane_spans(BATCH - 1) == [(0, BATCH - 1)]
    assert rnn_lanes.lane_spans(129) == [(0, 64), (64, 129)]


@pytest.mark.parametrize("masked, dropout, go_backwards",
                         [(False, False, False), (True, True, True), (True, False, False)])
def test_two_lanes_match_the_step_equations_and_their_gradients(masked, dropout,
                                                                go_backwards, kernels):
    rng = np.random.default_rng(0)
    x, kernel, rec, bias, h0, c0 = _case(rng)
    mask = rng.random(x.shape[:2]) > 0.3 if masked else None
    rmask = (rng.random(h0.shape) > 0.5) * 2.0 if dropout else None
    kw = dict(mask=mask, recurrent_mask=rmask, go_backwards=go_backwards,
              return_sequences=True)
    packed = LSTMSequence.apply(x, kernel, rec, bias, h0, c0, **kw).data
    seq, _, c = _reference(x, kernel, rec, bias, h0, c0, mask, rmask, go_backwards)
    np.testing.assert_allclose(packed[:, :-1], seq, atol=1e-12)
    np.testing.assert_allclose(packed[:, -1], c, atol=1e-12)
    check_gradients(lambda *a: LSTMSequence.apply(*a, **kw), [x, kernel, rec, bias, h0, c0])


def test_two_lanes_last_output_and_no_bias_gradients(kernels):
    rng = np.random.default_rng(1)
    x, kernel, rec, _, h0, c0 = _case(rng)
    check_gradients(lambda *a: LSTMSequence.apply(*a, None, None, None), [x, kernel, rec])
    check_gradients(lambda *a: LSTMSequence.apply(*a, activation="relu",
                                                  recurrent_activation="hard_sigmoid"),
                    [x, kernel, rec, rng.standard_normal(8) * 0.3, h0, c0])


def _train_step(args, g, **kw):
    tensors = [Tensor(a, requires_grad=True) for a in args]
    out = LSTMSequence.apply(*tensors, return_sequences=True, **kw)
    return [out.data, *out._ctx.backward(g)]


def test_bits_do_not_depend_on_the_pool(pool_of_two, kernels):
    rng = np.random.default_rng(3)
    args = [a.astype(np.float32) for a in _case(rng, batch=48, steps=11, features=5,
                                                   units=16)]
    kw = dict(mask=rng.random((48, 11)) > 0.2,
              recurrent_mask=((rng.random((48, 16)) > 0.3) / 0.7).astype(np.float32))
    g = rng.standard_normal((48, 12, 16)).astype(np.float32)
    together = [_train_step(args, g, **kw) for _ in range(3)]
    threads.set_thread_policy(1)
    alone = _train_step(args, g, **kw)
    for run in together:
        for a, b in zip(alone, run):
            np.testing.assert_array_equal(a, b)


def _lane(log, name, chunks, fail_at=None, exc=RuntimeError, counts=False):
    # counts: yield the chunks left, and no yield after the last (as the LSTM kernels')
    for k in range(chunks):
        if counts and k:
            yield chunks - k
        if k == fail_at:
            raise exc(f"{name} failed")
        log.append((name, k, threading.get_ident()))
        time.sleep(0.002)
        if not counts:
            yield


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("policy", [1, "pool"])
def test_every_chunk_of_every_lane_runs_once_in_order(policy, counts, request):
    if policy == "pool":
        request.getfixturevalue("pool_of_two")
    else:
        threads.set_thread_policy(1)
    try:
        log = []
        rnn_lanes.run_lanes([_lane(log, "a", 5, counts=counts),
                             _lane(log, "b", 7, counts=counts)])
        # (a lane of one chunk, and one much longer: the thread done first leaves)
        rnn_lanes.run_lanes([_lane(log, "c", 1, counts=counts),
                             _lane(log, "d", 40, counts=counts)])
    finally:
        threads.set_thread_policy("auto")
    for name, n in (("a", 5), ("b", 7), ("c", 1), ("d", 40)):
        assert [k for lane, k, _ in log if lane == name] == list(range(n))
    if policy == 1:  # the caller alone: one lane after the other
        assert [lane for lane, _, _ in log] == ["a"] * 5 + ["b"] * 7 + ["c"] + ["d"] * 40


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("failing", [0, 1])
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_one_lane_stops_the_other_and_reaches_the_caller(pool_of_two, failing,
                                                                     exc, counts):
    log = []
    lanes = [_lane(log, "a", 50, fail_at=2 if failing == 0 else None, exc=exc, counts=counts),
             _lane(log, "b", 50, fail_at=2 if failing == 1 else None, exc=exc, counts=counts)]
    start = time.monotonic()
    with pytest.raises(exc, match="failed"):
        rnn_lanes.run_lanes(lanes)
    assert time.monotonic() - start < 5
    assert len(log) < 100  # the other lane stopped early
    done = []
    threads.parallel_for(4, done.append)  # the pool still works
    assert sorted(done) == [0, 1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("choice", ["numpy", "numba"])
def test_ctrl_c_during_lstm_fit_stops_cleanly(choice, monkeypatch):
    if choice == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("LAMINA_KERNELS", choice)  # (the child reads it)
    code, out = interrupt_fit((20, 8), 'lamina.layers.LSTM(64), lamina.layers.Dense(10)', 2048)
    assert code == 3
    assert "interrupted" in out


def test_buffers_are_reused_once_their_owner_is_freed():
    gc.collect()  # nodes of earlier tests left in cycles give their arrays back now
    rnn_buffers.clear()

    class Node:
        pass

    a = rnn_buffers.take((3, 5), np.float32)
    node = Node()
    rnn_buffers.hold(node, a)
    assert rnn_buffers.take((3, 5), np.float32) is not a  # still held
    del node
    gc.collect()
    assert rnn_buffers.pooled_bytes() == a.nbytes
    assert rnn_buffers.take((3, 5), np.float64) is not a  # another dtype
    assert rnn_buffers.take((3, 5), np.float32) is a
    assert rnn_buffers.pooled_bytes() == 0


def test_the_pool_keeps_a_bounded_number_of_arrays():
    gc.collect()
    rnn_buffers.clear()
    arrays = [np.empty((4, 4)) for _ in range(rnn_buffers.PER_SHAPE + 2)]
    rnn_buffers.give(*arrays)
    assert rnn_buffers.pooled_bytes() == rnn_buffers.PER_SHAPE * arrays[0].nbytes
    rnn_buffers.give(np.empty(rnn_buffers.MAX_BYTES // 8 + 1))
    assert rnn_buffers.pooled_bytes() == rnn_buffers.PER_SHAPE * arrays[0].nbytes
    rnn_buffers.clear()
    assert rnn_buffers.pooled_bytes() == 0


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_HUGEPAGE"), reason="no THP")
def test_large_buffers_start_on_a_huge_page_and_hold_their_values():
    shape = (rnn_buffers.HUGE_MIN_BYTES // 4 + 3, 3)  # (a size that is no page multiple)
    a = rnn_buffers.take(shape, np.float32)
    assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.flags.writeable and a.ctypes.data % rnn_buffers.HUGE_PAGE == 0
    a[...] = np.arange(a.size, dtype=np.float32).reshape(shape)
    b = rnn_buffers.take(shape, np.float32)  # (another mapping: no overlap)
    b[...] = -1.0
    np.testing.assert_array_equal(a.ravel(), np.arange(a.size, dtype=np.float32))
    small = rnn_buffers.take((4, 4), np.float64)
    assert small.base is None  # (numpy's own allocation below the threshold)


def test_lstm_steps_reuse_their_buffers_and_give_the_same_results(kernels):
    rng = np.random.default_rng(4)
    args = [a.astype(np.float32) for a in _case(rng, batch=32, steps=6, features=3,
                                                   units=8)]
    g = rng.standard_normal((32, 7, 8)).astype(np.float32)
    rnn_buffers.clear()
    first = _train_step(args, g)
    gc.collect()
    assert rnn_buffers.pooled_bytes() > 0  # the step's arrays came back
    second = _train_step(args, g)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_steady_lstm_step_allocates_no_pooled_array(kernels, monkeypatch):
    """Every array a step takes comes back from the pool at the next step: two lanes
    take arrays of one shape several times (tc and hs: four per step), which a pool of
    two per shape missed, allocating (and faulting in) two fresh ones every step.

    On the calling thread alone: with a worker, a step whose two lanes' backward ran at
    the same time takes two scratch arrays of a shape where a step that ran them in turn
    took one, and which way a step goes follows the load (17 of 300 steady steps
    allocated after a step that ran its lanes in turn), not the pool's size."""
    policy = threads.get_thread_policy()
    threads.set_thread_policy(1)
    try:
        assert threads.worker_count() == 0
        _steady_step_allocations_are_none(monkeypatch)
    finally:
        threads.set_thread_policy(policy)


def _steady_step_allocations_are_none(monkeypatch):
    rng = np.random.default_rng(6)
    args = [a.astype(np.float32) for a in _case(rng, batch=32, steps=6, features=3,
                                                   units=8)]
    g = rng.standard_normal((32, 7, 8)).astype(np.float32)
    rnn_buffers.clear()
    _train_step(args, g)
    gc.collect()
    fresh = []
    empty = rnn_buffers._empty
    monkeypatch.setattr(rnn_buffers, "_empty",
                        lambda shape, dtype: fresh.append(shape) or empty(shape, dtype))
    _train_step(args, g)
    assert fresh == []


def test_two_lane_inference_equals_the_recorded_forward(kernels):
    from lamina.backend import autodiff

    rng = np.random.default_rng(5)
    args = [a.astype(np.float32) for a in _case(rng, steps=6, features=3, units=4)]
    recorded = LSTMSequence.apply(*[Tensor(a, requires_grad=True) for a in args],
                                  return_sequences=True).data
    with autodiff.no_grad():
        plain = LSTMSequence.apply(*args, return_sequences=True).data
    np.testing.assert_array_equal(plain, recorded)
