"""The TCP ring collective: the documented reduction order bit for bit on every rank, a
meta gather in rank order, None and meta-only exchanges, abort, time-outs, a killed
peer, argument errors, and ``launch(..., transport="ring")`` equal to local ``fit``."""

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

from lamina.distribute import local, ring
from lamina.distribute.shm import CollectiveAborted
from tests.sdk.distribute.test_data_parallel import COMPILE, _cnn, _data, _lstm, _mlp

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
    timer.start()

    def body(collective, rank):
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
        timer = None

        def body(collective, rank):
            first = collective.exchange(np.ones(1000, np.float32))[0].copy()
            start = time.monotonic()
            with pytest.raises(CollectiveAborted, match="lost the connection to rank"):
                collective.exchange(np.ones(1000, np.float32))  # the peer never comes
            return first, time.monotonic() - start

        def kill_when_ready():
            assert peer.stdout.readline().strip() == "ready"
            time.sleep(0.3)
            peer.send_signal(signal.SIGKILL)

        timer = threading.Thread(target=kill_when_ready)
        timer.start()
        results, errors = _run_ranks(3, 1000, body, m=2, timeout=30, ranks=[0, 1],
                                     group=(endpoints, addresses))
        timer.join(30)
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
