"""The TCP ring collective: the documented reduction order bit for bit on every rank, a
meta gather in rank order, None and meta-only exchanges, abort, time-outs, a killed
peer, argument errors, and ``launch(..., transport="ring")`` equal to local ``fit``.
Ranges (gradient buckets): the bytes of the whole exchange, from another thread, a
control exchange meeting a range, abort and a killed peer mid-bucket; bucketed
replicas equal unbucketed ones and local ``fit``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend.autodiff import gradient_ready_hook, gradients
from lamina.distribute import buckets, local, ring
from lamina.distribute.shm import CollectiveAborted
from tests.sdk.distribute.test_buckets import _mlp_loss, _mlp_variables, _no_reducer_within
from tests.sdk.distribute.test_data_parallel import COMPILE, _cnn, _data, _lstm, _mlp

sys.path.insert(0, os.path.dirname(__file__))
import bucket_replica  # noqa: E402  (spawned replicas import it by name)

SDK = os.path.join(os.path.dirname(__file__), "..", "..", "..", "sdk")


def _group(world):
    endpoints = [ring.listen("127.0.0.1") for _ in range(world)]
    return endpoints, [e.address for e in endpoints]


def _run_ranks(world, n, body, m=3, timeout=20.0, ranks=None, group=None):
    """``body(collective, rank)`` on each rank of ``ranks`` (all) in threads."""
    endpoints, addresses = group or _group(world)
    results, errors = {}, {}

    def run(rank):
        collective = None
        try:
            collective = ring.RingCollective(endpoints[rank], addresses, rank, n, m,
                                             timeout=timeout)
            results[rank] = body(collective, rank)
        except BaseException as exc:  # noqa: BLE001 - pytest.raises' failures too
            errors[rank] = exc
        finally:
            if collective is not None:
                collective.close()

    threads = [threading.Thread(target=run, args=(r,))
               for r in (range(world) if ranks is None else ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a rank hung"
    return results, errors


def _ranks_while_peer_killed(peer, body, endpoints, addresses):
    """Run ``body`` on ranks 0 and 1 of a 3-ring while rank 2 (``peer``, a process that
    prints "ready") is SIGKILLed 0.3 s after it is ready."""
    def kill_when_ready():
        assert peer.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        peer.send_signal(signal.SIGKILL)

    timer = threading.Thread(target=kill_when_ready)
    timer.start()
    try:
        return _run_ranks(3, 1000, body, m=2, timeout=30, ranks=[0, 1],
                          group=(endpoints, addresses))
    finally:
        timer.join(30)


def _ring_order_sum(contributions):
    """The documented order: chunk c (linspace bounds) is summed from rank c on,
    ((x[c] + x[c+1]) + ...) + x[c-1], in float32."""
    world, n = contributions.shape
    bounds = np.linspace(0, n, world + 1).astype(int)
    out = np.empty(n, np.float32)
    for c in range(world):
        part = slice(bounds[c], bounds[c + 1])
        acc = contributions[c, part].copy()
        for k in range(1, world):
            acc = acc + contributions[(c + k) % world, part]
        out[part] = acc
    return out


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("n", [1, 3, 7, 1001, 150_001])  # n < world; n % world != 0
def test_exchange_sums_in_ring_order_and_gathers_meta(world, n):
    rng = np.random.default_rng(world * n)
    vectors = rng.normal(size=(world, 3, n)).astype(np.float32)
    scales = [0.25, 0.5, 0.125, 0.125][:world]

    def body(collective, rank):
        out = []
        for step in range(3):
            total, metas = collective.exchange(vectors[rank, step], [rank, step],
                                               scale=scales[rank])
            out.append((total.copy(), metas))
        return out

    results, errors = _run_ranks(world, n, body)
    assert not errors, errors
    for step in range(3):
        scaled = vectors[:, step] * np.float32(1)
        for r in range(world):
            scaled[r] = vectors[r, step] * np.float32(scales[r])
        expected = _ring_order_sum(scaled)
        np.testing.assert_allclose(expected, scaled.sum(0, dtype=np.float64), rtol=1e-5,
                                   atol=1e-6)
        for rank in range(world):
            total, metas = results[rank][step]
            assert total.tobytes() == expected.tobytes()  # the same bits on every rank
            np.testing.assert_array_equal(metas[:, :2], [[r, step] for r in range(world)])
            assert (metas[:, 2] == 0).all()


def test_none_slot_and_meta_only_exchanges():
    def body(collective, rank):
        vector = np.arange(4, dtype=np.float32) if rank == 1 else None
        first = collective.exchange(vector)[0].copy()
        collective.slot[:] = rank + 1  # written in place: no scale applied again
        second = collective.exchange(collective.slot, scale=10.0)[0].copy()
        _, metas = collective.exchange(None, [rank * 2.5])
        return first, second, metas

    results, errors = _run_ranks(3, 4, body)
    assert not errors, errors
    for first, second, metas in results.values():
        np.testing.assert_array_equal(first, [0, 1, 2, 3])
        np.testing.assert_array_equal(second, [6, 6, 6, 6])
        np.testing.assert_array_equal(metas[:, 0], [0, 2.5, 5])

    results, errors = _run_ranks(2, 0, lambda c, r: c.exchange(None, [r])[1])  # n = 0
    assert not errors, errors
    np.testing.assert_array_equal(results[1][:, 0], [0, 1])


def test_ipv6_and_default_host_endpoints():
    endpoints = [ring.listen("::1"), ring.listen()]  # None: this machine's address
    assert endpoints[1].address[0] != "::1"
    results, errors = _run_ranks(2, 5, lambda c, r: c.exchange(np.ones(5, np.float32))[0]
                                 .copy(), group=(endpoints, [e.address for e in endpoints]))
    assert not errors, errors
    np.testing.assert_array_equal(results[0], [2] * 5)


def test_one_rank_needs_no_peers():
    endpoint = ring.listen("127.0.0.1")
    collective = ring.RingCollective(endpoint, [endpoint.address], 0, 3, 2)
    total, metas = collective.exchange(np.ones(3, np.float32), [7], scale=0.5)
    np.testing.assert_array_equal(total, [0.5] * 3)
    np.testing.assert_array_equal(metas, [[7, 0]])
    collective.barrier()
    collective.close()
    with pytest.raises(CollectiveAborted, match="closed"):
        collective.exchange(None)


def test_many_exchanges_and_barriers():
    world, n = 4, 64

    def body(collective, rank):
        bad = 0
        for step in range(100):
            total, metas = collective.exchange(np.full(n, rank + step, np.float32), [step])
            bad += int((total != sum(r + step for r in range(world))).any())
            bad += int((metas[:, 0] != step).any())
            if step % 10 == 0:
                collective.barrier()
        return bad

    results, errors = _run_ranks(world, n, body)
    assert not errors, errors
    assert results == {r: 0 for r in range(world)}


def test_abort_from_a_rank_wakes_its_waiting_peers():
    endpoints, addresses = _group(3)
    handles = {}

    def body(collective, rank):
        handles[rank] = collective
        if rank == 2:
            time.sleep(0.3)  # ranks 0 and 1 are waiting in their exchange by now
            collective.abort("rank 2 gave up")
            with pytest.raises(CollectiveAborted, match="rank 2 gave up"):
                collective.exchange(None)
            return None
        start = time.monotonic()
        with pytest.raises(CollectiveAborted):
            collective.exchange(np.ones(5, np.float32))
        return time.monotonic() - start

    results, errors = _run_ranks(3, 5, body, group=(endpoints, addresses))
    assert not errors, errors
    assert results[0] < 5 and results[1] < 5


def test_driver_abort_wakes_waiting_ranks():
    endpoints, addresses = _group(2)
    timer = threading.Timer(0.3, ring.abort, args=(addresses,))
    connected = threading.Barrier(2)

    def body(collective, rank):
        # the abort is timed from the ring's rendezvous, not from before it (a loaded
        # machine can take longer than 0.3 s to connect two ranks)
        connected.wait(30)
        if rank == 0:
            timer.start()
        with pytest.raises(CollectiveAborted, match="aborted by its driver"):
            if rank == 0:
                collective.exchange(np.ones(5, np.float32))
            else:
                time.sleep(0.6)  # computing when the abort arrives: the next call raises
                collective.exchange(np.ones(5, np.float32))

    _, errors = _run_ranks(2, 5, body, group=(endpoints, addresses))
    timer.join()
    assert not errors, errors


def test_a_waiting_rank_times_out_and_its_peer_then_fails():
    endpoints, addresses = _group(2)
    released = threading.Event()

    def body(collective, rank):
        if rank == 0:
            start = time.monotonic()
            with pytest.raises(TimeoutError, match="rank 0 waited"):
                collective.exchange(np.ones(4, np.float32))
            released.set()
            return time.monotonic() - start
        released.wait(10)
        with pytest.raises(CollectiveAborted, match="lost the connection to rank 0"):
            collective.exchange(np.ones(4, np.float32))
        return None

    results, errors = _run_ranks(2, 4, body, timeout=0.3, group=(endpoints, addresses))
    assert not errors, errors
    assert 0.3 <= results[0] < 3


_PEER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from lamina.distribute import ring
    endpoint = ring.listen("127.0.0.1")
    print(json.dumps(endpoint.address), flush=True)
    addresses = json.loads(sys.stdin.readline())
    collective = ring.RingCollective(endpoint, addresses, 2, 1000, 2, timeout=60)
    collective.exchange(np.ones(1000, np.float32))
    print("ready", flush=True)
    time.sleep(60)
""")


def test_a_killed_peer_makes_the_others_raise_within_the_timeout():
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SDK))
    peer = subprocess.Popen([sys.executable, "-c", _PEER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        endpoints, addresses = _group(2)
        endpoints.append(None)
        addresses.append(tuple(json.loads(peer.stdout.readline())))
        peer.stdin.write(json.dumps(addresses) + "\n")
        peer.stdin.flush()

        def body(collective, rank):
            first = collective.exchange(np.ones(1000, np.float32))[0].copy()
            start = time.monotonic()
            with pytest.raises(CollectiveAborted, match="lost the connection to rank"):
                collective.exchange(np.ones(1000, np.float32))  # the peer never comes
            return first, time.monotonic() - start

        results, errors = _ranks_while_peer_killed(peer, body, endpoints, addresses)
        assert not errors, errors
        for first, waited in results.values():
            np.testing.assert_array_equal(first, np.full(1000, 3.0))
            assert waited < 10  # the kill, not the 30 s timeout, ended the wait
    finally:
        peer.kill()
        peer.wait(10)
        peer.stdin.close()
        peer.stdout.close()


def test_bad_arguments_are_named():
    endpoints, addresses = _group(2)
    with pytest.raises(ValueError, match="rank=2"):
        ring.RingCollective(endpoints[0], addresses, 2, 4)
    with pytest.raises(ValueError, match="n=-1"):
        ring.RingCollective(endpoints[0], addresses, 0, -1)
    with pytest.raises(ValueError, match="m=0"):
        ring.RingCollective(endpoints[0], addresses, 0, 4, m=0)
    with pytest.raises(ValueError, match="timeout=0"):
        ring.RingCollective(endpoints[0], addresses, 0, 4, timeout=0)
    with pytest.raises(ValueError, match=r"addresses\[1\] must be this rank's endpoint"):
        ring.RingCollective(endpoints[0], addresses, 1, 4)
    with pytest.raises(ValueError, match=r"addresses=\[\]"):
        ring.RingCollective(endpoints[0], [], 0, 4)
    with pytest.raises(ValueError, match="port=70000"):
        ring.listen("127.0.0.1", 70000)
    for endpoint in endpoints:
        endpoint.close()
    endpoint = ring.listen("127.0.0.1")
    collective = ring.RingCollective(endpoint, [endpoint.address], 0, 4, m=2)
    with pytest.raises(ValueError, match="size=5"):
        collective.exchange(np.ones(5, np.float32))
    with pytest.raises(ValueError, match="at most m=2 values. Received: 3 values"):
        collective.exchange(None, [1, 2, 3])
    collective.close()
    with pytest.raises(ValueError, match="transport=.tcp."):
        local.launch(local.fit_replica, 2, n=4, transport="tcp")


def test_set_up_fails_on_an_unreachable_or_absent_peer():
    endpoints, addresses = _group(2)
    with pytest.raises(TimeoutError, match="predecessor to connect"):
        ring.RingCollective(endpoints[0], addresses, 0, 4, timeout=0.3)  # rank 1 absent
    endpoints[1].close()
    endpoints, addresses = _group(2)
    endpoints[1].close()
    with pytest.raises(ConnectionError, match="could not reach rank 1"):
        ring.RingCollective(endpoints[0], addresses, 0, 4, timeout=5)


def test_peers_that_disagree_on_n_or_the_call_fail_with_both_named():
    endpoints, addresses = _group(2)
    errors = {}

    def run(rank, n):
        try:
            ring.RingCollective(endpoints[rank], addresses, rank, n, timeout=5).close()
        except ValueError as exc:
            errors[rank] = str(exc)

    threads = [threading.Thread(target=run, args=(r, 4 + r)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert "n=5" in errors[0] and "n=4" in errors[1]

    def body(collective, rank):
        if rank == 0:
            collective.barrier()
        else:
            collective.exchange(np.ones(4, np.float32))

    _, errors = _run_ranks(2, 4, body, timeout=5)
    assert set(errors) == {0, 1}
    assert any("called different collectives" in str(e) for e in errors.values())


@pytest.mark.slow
@pytest.mark.parametrize("build,shape", [(_mlp, (12,)), (_cnn, (6, 6, 1)), (_lstm, (5, 4))])
def test_two_replicas_over_the_ring_equal_local_fit(build, shape):
    """test_data_parallel's models, dropout included (an LSTM's recurrent dropout too)."""
    _check_ring_fit(build(0.3), shape, 2)


@pytest.mark.slow
def test_four_replicas_over_the_ring_equal_local_fit():
    """Slices of 5 rows (the last batch's are 2); a 4-step ring per exchange."""
    _check_ring_fit(_mlp(0.3), (12,), 4)


def _check_ring_fit(model, shape, world):
    x, y = _data(110, shape)
    fit = {"batch_size": 20, "epochs": 3, "shuffle": True, "validation_split": 0.2}
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    reference = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    results = local.launch(local.fit_replica, world, model.to_json(), COMPILE, 5, x, y, fit,
                           n=n, transport="ring", timeout=120)
    for other in results[1:]:
        for a, b in zip(results[0]["weights"], other["weights"]):
            assert a.tobytes() == b.tobytes()  # replicas stay bit-identical
    for a, b in zip(results[0]["weights"], reference["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key, values in reference["history"].items():
        np.testing.assert_allclose(results[0]["history"][key], values, rtol=1e-5,
                                   err_msg=key)


# -- ranges (gradient buckets) -----------------------------------------------------------
@pytest.mark.parametrize("world", [2, 3, 4])
def test_range_exchanges_give_the_whole_exchange_bytes(world):
    """In place (staging) from another thread, and copied prefixes: each element summed
    as the whole exchange sums it at that position."""
    n = 1001
    values = np.random.default_rng(world).normal(size=(world, n)).astype(np.float32)
    ranges = [(0, n), (0, 1), (3, 700), (333, 334), (500, n), (10, 10)]

    def body(collective, rank):
        assert collective.accepts_prefix
        send, result = collective.staging()
        assert send is collective.slot and result is collective.result
        whole = collective.exchange(values[rank])[0].copy()
        got = []

        def reducer():  # as the buckets' reducer thread does it
            for lo, hi in ranges:
                send[:] = np.nan  # outside the range: never read
                send[lo:hi] = values[rank, lo:hi]
                total, metas = collective.exchange(send[lo:hi], [rank, lo])
                assert total.size == hi - lo and (hi == lo or np.shares_memory(total, result))
                got.append((total.copy(), metas))
            got.append(collective.exchange(values[rank, :400] * 2, scale=0.5)[0].copy())

        thread = threading.Thread(target=reducer)
        thread.start()
        thread.join(30)
        return whole, got

    results, errors = _run_ranks(world, n, body)
    assert not errors, errors
    expected = _ring_order_sum(values)
    for whole, got in results.values():
        assert whole.tobytes() == expected.tobytes()
        for (lo, hi), (total, metas) in zip(ranges, got):
            assert total.tobytes() == expected[lo:hi].tobytes()
            np.testing.assert_array_equal(metas[:, :2], [[r, lo] for r in range(world)])
        assert got[-1].tobytes() == expected[:400].tobytes()  # a copied prefix


def test_a_control_exchange_meeting_a_range_gathers_the_metas():
    """The chief's ``exchange(None)`` against its peers' first bucket: another payload
    size is read and dropped, the meta rows arrive, and the ring goes on."""
    def body(collective, rank):
        if rank == 0:
            _, metas = collective.exchange(None, [7.0])
        else:
            collective.slot[:] = 1.0
            _, metas = collective.exchange(collective.slot[2:5], [rank])
        total = collective.exchange(np.full(6, rank + 1, np.float32))[0].copy()
        return metas, total

    results, errors = _run_ranks(3, 6, body)
    assert not errors, errors
    for metas, total in results.values():
        np.testing.assert_array_equal(metas[:, 0], [7, 1, 2])
        np.testing.assert_array_equal(total, np.full(6, 6.0))


def test_abort_from_another_thread_ends_a_range_exchange_at_once():
    """Rank 1 comes only after rank 0 gave up, so nothing but the abort can end rank 0's
    wait before its timeout (which would raise TimeoutError, not CollectiveAborted);
    rank 1 used to come after a fixed 1.0 s with rank 0 bound to < 0.9 s, which a timer
    thread held off the CPU for 0.7 s would fail."""
    gave_up = threading.Event()

    def body(collective, rank):
        if rank == 1:
            assert gave_up.wait(30), "rank 0 never gave up"
            with pytest.raises(CollectiveAborted):
                collective.exchange(collective.slot[:3])
            return None
        timer = threading.Timer(0.2, collective.abort, args=("the step was interrupted",))
        timer.start()
        start = time.monotonic()
        try:
            with pytest.raises(CollectiveAborted, match="the step was interrupted"):
                collective.exchange(collective.slot[:3])
        finally:
            gave_up.set()
        timer.join()
        return time.monotonic() - start

    results, errors = _run_ranks(2, 8, body)
    assert not errors, errors
    assert 0.2 <= results[0] < 20.0  # _run_ranks' timeout


def test_a_killed_peer_mid_bucket_ends_the_reducer_and_raises():
    """Ranks 0 and 1 bucket a step's gradients while rank 2 (a process) is killed: the
    bucket in flight fails on both within seconds and their reducer threads end."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SDK))
    peer = subprocess.Popen([sys.executable, "-c", _PEER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        endpoints, addresses = _group(2)
        endpoints.append(None)
        addresses.append(tuple(json.loads(peer.stdout.readline())))
        peer.stdin.write(json.dumps(addresses) + "\n")
        peer.stdin.flush()

        def body(collective, rank):
            collective.exchange(np.ones(1000, np.float32))  # the peer's one exchange
            variables = _mlp_variables()
            bucketed = buckets.Buckets(collective, variables, 16 / 2**20)
            x = np.ones((3, 6), np.float32)
            with gradient_ready_hook(bucketed.hook(0.5)):
                grads = gradients(_mlp_loss(variables, x), variables)
            assert bucketed.count == 5
            start = time.monotonic()
            with pytest.raises(CollectiveAborted, match="lost the connection"):
                bucketed.finish(grads)  # bucket 0 waits for the killed peer
            return time.monotonic() - start

        results, errors = _ranks_while_peer_killed(peer, body, endpoints, addresses)
        assert not errors, errors
        assert all(waited < 5 for waited in results.values())  # not the 30 s timeout
        assert _no_reducer_within(2)
    finally:
        peer.kill()
        peer.wait(10)
        peer.stdin.close()
        peer.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_bucketed_ring_replicas_equal_unbucketed_and_local_fit(monkeypatch, world):
    """Dropout and shuffle. With 2 ranks bucketed == unbucketed bit for bit (a sum of
    two is the same either way round); with 3, a variable's chunk (its order) may
    move with the bucket layout: equal to rounding, replicas still bit-identical."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = rng.normal(size=(60, 12)).astype(np.float32) + y[:, None]
    model = lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                               layers.Dropout(0.3), layers.Dense(8, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    size = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fit = {"batch_size": 20, "epochs": 3, "shuffle": True}
    runs = {}
    for cap in ("0", "0.00005"):  # off; ~13 floats a bucket
        monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", cap)
        runs[cap] = local.launch(bucket_replica.fit_and_count, world, model.to_json(),
                                 COMPILE, 5, x, y, fit, n=size, transport="ring",
                                 timeout=120)
    assert [r["buckets"] for r in runs["0.00005"]] == [4] * world
    assert [r["staged"] for r in runs["0.00005"]] == [True] * world
    assert [r["buckets"] for r in runs["0"]] == [0] * world
    for run in runs.values():
        for result in run[1:]:
            for a, b in zip(run[0]["weights"], result["weights"]):
                assert a.tobytes() == b.tobytes()
    plain, bucketed = runs["0"][0]["weights"], runs["0.00005"][0]["weights"]
    for a, b in zip(plain, bucketed):
        if world == 2:
            assert a.tobytes() == b.tobytes()
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    single = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    for a, b in zip(single["weights"], bucketed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_chiefs_stop_and_abort_meet_a_bucket_over_the_ring(monkeypatch):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 100)
    x = rng.normal(size=(100, 12)).astype(np.float32) + y[:, None]
    model = lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0.00005")
    for abort in (False, True):
        results = local.launch(bucket_replica.fit_until_the_chief_stops, 2, model.to_json(),
                               COMPILE, x, y, {"batch_size": 20, "epochs": 3}, 2, abort,
                               n=300, transport="ring", timeout=60)
        assert [r["buckets"] for r in results] == [3, 3]
        assert [r["aborted"] for r in results] == [abort, abort]
        assert [r["iterations"] for r in results] == [3, 3]
        for a, b in zip(results[0]["weights"], results[1]["weights"]):
            assert a.tobytes() == b.tobytes()
