"""The TCP ring between network namespaces over a shaped link, a cost model, a projection.

Builds ``world`` network namespaces on this machine (needs root and ``ip``/``tc``):

* ``world == 2``: one veth pair between the two namespaces;
* ``world > 2``: a hub namespace holding a bridge, one veth pair from each rank's
  namespace to a bridge port (a switch).

Every rank's interface (``eth0``, ``10.231.0.<rank + 1>/24``) gets an egress ``tbf``
qdisc at the link's rate (both ends of a pair; only the rank side with a bridge: each
downlink carries one sender's traffic). **No delay on the wire**: this kernel is built
without ``sch_netem`` (``CONFIG_NET_SCH_NETEM`` is not set, no modules), so the link's
one-way delay (``--delay-ms``, 0.1) is added to the fitted per-step latency in the
projection: each ring step waits for one message, i.e. one one-way delay. One rank per
namespace runs this file with ``--worker`` under ``ip netns exec``; ranks publish their
:func:`lamina.distribute.ring.listen` address through files in a temporary directory.
For each size (float32 elements) the ranks run ``--rounds`` back-to-back
:meth:`RingCollective.exchange` calls (a third as many above 1M floats) after 3
warm-ups; a round's time is the slowest rank's, the figure is the median round.

The fit: ``t(n) = 2 (N - 1) * (alpha + (n / N) * 4 / beta)`` (each of the ``2 (N-1)``
ring steps moves one chunk of ``n / N`` floats), least squares in ``(alpha, 1 / beta)``
per (world, link), rows weighted by ``1 / t`` (and plain, for comparison). The
projection: data-parallel weak scaling (fixed per-replica batch 128),
``eff(N) = T / (T + t_allreduce(N))``, no overlap of compute and communication, ``T``
the single-process step time measured here (1 BLAS thread) for the bench MLP and CNN
and, for a 25M-parameter dense model, the MLP's FLOP rate (6 * params * batch FLOPs
per step); ``alpha`` is the median of the N=2 fits' plus the delay, ``beta`` the
link's line rate and, as a floor, what this box drives (the plain fit's at N=2).

Namespaces are named ``lmring-<driver pid>-<i>``; they are deleted in ``finally`` (and
on SIGTERM/SIGINT), and leftovers of a driver that is gone are deleted at start.

    python bench/netns_ring.py [--worlds 2,4] [--links none,1gbit,10gbit,25gbit]
        [--delay-ms 0.1] [--rounds 60] [--step-times mlp=S,cnn=S] [--json out.json]
    python bench/netns_ring.py --reproject out.json    # the projection of a saved run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IP = "/usr/sbin/ip"
PREFIX = "lmring-"
# float32 elements: 4 KB .. 16 MB by 4x, plus the CNN's and the MLP's gradients.
SIZES = [1024, 4096, 16384, 34_826, 65536, 262144, 669_706, 1048576, 4194304]
NODES = [2, 4, 8, 16, 32, 64]
BATCH = 128
BURST = "128kb"  # tbf bucket: ~0.1 ms of 10 Gbit/s, above a 64 KB GSO packet


# -- rank side ---------------------------------------------------------------------------
def _publish(path: str, payload) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def _gather(directory: str, tag: str, world: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        paths = [os.path.join(directory, f"{tag}-{r}.json") for r in range(world)]
        if all(os.path.exists(p) for p in paths):
            out = []
            for p in paths:
                with open(p) as f:
                    out.append(json.load(f))
            return out
        if time.monotonic() > deadline:
            raise TimeoutError(f"ranks did not publish {tag} within {timeout}s")
        time.sleep(0.005)


def worker(args) -> None:
    """One rank: for every size, a ring, warm-ups, ``rounds`` timed exchanges."""
    sys.path.insert(0, os.path.join(ROOT, "sdk"))
    from lamina.distribute import ring

    times = {}
    for index, n in enumerate(args.sizes):
        endpoint = ring.listen(args.host, 0)
        _publish(os.path.join(args.dir, f"addr{index}-{args.rank}.json"),
                 list(endpoint.address))
        addresses = [tuple(a) for a in _gather(args.dir, f"addr{index}", args.world, 60)]
        collective = ring.RingCollective(endpoint, addresses, args.rank, n, 1, timeout=60)
        try:
            vector = np.random.default_rng(args.rank).random(n, dtype=np.float32)
            rounds = args.rounds if n <= 1 << 20 else max(10, args.rounds // 3)
            for _ in range(3):
                collective.exchange(vector)
            elapsed = []
            for _ in range(rounds):
                start = time.perf_counter()
                collective.exchange(vector)
                elapsed.append(time.perf_counter() - start)
            times[str(n)] = elapsed
        finally:
            collective.close()
    _publish(os.path.join(args.dir, f"times-{args.rank}.json"), times)


# -- namespaces --------------------------------------------------------------------------
def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([IP, *argv], check=check, capture_output=True, text=True)


def _namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in out if line.strip()]


def _delete_namespace(name: str) -> None:
    """Kill what still runs in ``name`` (our ranks, by pid), then delete it."""
    pids = _ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "delete", name, check=False)


def sweep_stale() -> None:
    """Delete ``lmring-<pid>-*`` namespaces whose driver process is gone."""
    for name in _namespaces():
        if not name.startswith(PREFIX):
            continue
        try:
            pid = int(name[len(PREFIX):].split("-")[0])
            with open(f"/proc/{pid}/stat") as f:
                alive = f.read().rsplit(")", 1)[1].split()[0] != "Z"  # not a zombie
        except (ValueError, OSError):
            alive = False
        if not alive:
            _delete_namespace(name)


class Topology:
    """``world`` rank namespaces on a shaped veth pair (2) or bridge (more)."""

    def __init__(self, world: int, rate: str | None) -> None:
        self.world, self.rate = world, rate
        self.names = [f"{PREFIX}{os.getpid()}-{i}" for i in range(world)]
        self.hub = f"{PREFIX}{os.getpid()}-hub" if world > 2 else None
        self.created: list[str] = []

    def host(self, rank: int) -> str:
        return f"10.231.0.{rank + 1}"

    def __enter__(self) -> Topology:
        try:
            for name in self.names + ([self.hub] if self.hub else []):
                _ip("netns", "add", name)
                self.created.append(name)
                _ip("-n", name, "link", "set", "lo", "up")
            if self.hub is None:
                _ip("link", "add", "eth0", "netns", self.names[0], "type", "veth",
                    "peer", "name", "eth0", "netns", self.names[1])
            else:
                _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
                _ip("-n", self.hub, "link", "set", "br0", "up")
                for rank, name in enumerate(self.names):
                    _ip("link", "add", "eth0", "netns", name, "type", "veth", "peer",
                        "name", f"p{rank}", "netns", self.hub)
                    _ip("-n", self.hub, "link", "set", f"p{rank}", "master", "br0")
                    _ip("-n", self.hub, "link", "set", f"p{rank}", "up")
            for rank, name in enumerate(self.names):
                _ip("-n", name, "addr", "add", f"{self.host(rank)}/24", "dev", "eth0")
                _ip("-n", name, "link", "set", "eth0", "up")
                if self.rate is not None:
                    subprocess.run(["/usr/sbin/tc", "-n", name, "qdisc", "add", "dev",
                                    "eth0", "root", "tbf", "rate", self.rate, "burst",
                                    BURST, "latency", "20ms"],
                                   check=True, capture_output=True, text=True)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for name in reversed(self.created):
            _delete_namespace(name)
        self.created.clear()

    def __exit__(self, *exc) -> None:
        self.close()


def run_config(world: int, rate: str | None, sizes: list[int],
               rounds: int, timeout: float) -> dict[int, float]:
    """Median all-reduce seconds per size for one (world, link)."""
    procs = []
    with Topology(world, rate) as topo, \
            tempfile.TemporaryDirectory(prefix="lmring-") as directory:
        try:
            env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "sdk"),
                       OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
            for rank, name in enumerate(topo.names):
                cmd = [IP, "netns", "exec", name, sys.executable, os.path.abspath(__file__),
                       "--worker", "--rank", str(rank), "--world", str(world),
                       "--host", topo.host(rank), "--dir", directory, "--rounds",
                       str(rounds), "--sizes", ",".join(map(str, sizes))]
                procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
            deadline = time.monotonic() + timeout
            for proc in procs:
                _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                if proc.returncode != 0:
                    raise RuntimeError(f"a rank failed ({proc.returncode}): {err[-2000:]}")
            per_rank = _gather(directory, "times", world, 5)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    out = {}
    for n in sizes:
        rows = np.array([r[str(n)] for r in per_rank])  # (world, rounds)
        out[n] = float(np.median(rows.max(axis=0)))
    return out


# -- model, projection -------------------------------------------------------------------
def fit(world: int, medians: dict[int, float], relative: bool = True) -> dict:
    """Least squares of t = 2(N-1) alpha + 2(N-1) (4 n / N) / beta.

    ``relative``: rows weighted by 1 / t (minimises relative residuals, so the small
    sizes, which alone say what ``alpha`` is, count); else plain least squares on t
    (dominated by the largest sizes). R^2 is on t either way.
    """
    n = np.array(sorted(medians), float)
    t = np.array([medians[int(k)] for k in n])
    steps = 2 * (world - 1)
    design = np.stack([np.full_like(n, steps), steps * 4 * n / world], axis=1)
    weight = 1 / t if relative else np.ones_like(t)
    (alpha, inv_beta), *_ = np.linalg.lstsq(design * weight[:, None], t * weight,
                                            rcond=None)
    pred = design @ np.array([alpha, inv_beta])
    r2 = 1 - float(np.sum((t - pred) ** 2) / np.sum((t - t.mean()) ** 2))
    return {"alpha_s": float(alpha), "beta_Bps": float(1 / inv_beta), "r2": r2,
            "residuals": {int(k): (float(tk), float(pk)) for k, tk, pk in zip(n, t, pred)}}


def allreduce_seconds(nodes: int, params: float, alpha: float, beta: float) -> float:
    return 2 * (nodes - 1) * (alpha + (params / nodes) * 4 / beta)


def step_times() -> dict:
    """Single-process lamina step time (batch 128, 1 BLAS thread) for MLP and CNN."""
    code = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from threadpoolctl import threadpool_limits
threadpool_limits(limits=1, user_api="blas")
from common import mnist_like
from lamina_models import build
import lamina as keras
out = {}
for name, samples in (("mlp", 128 * 40), ("cnn", 128 * 12)):
    keras.utils.set_random_seed(0)
    x, y = mnist_like(samples)
    model = build(name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    epochs = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        epochs.append((time.perf_counter() - start) / (samples // 128))
    out[name] = {"params": model.count_params(), "step_s": sorted(epochs)[1],
                 "steps_s": epochs}
print(json.dumps(out))
"""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "sdk"), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code, HERE], env=env, check=True,
                          capture_output=True, text=True, timeout=1800)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def measure(args, report: dict) -> None:
    """Every (world, link) in turn; namespaces gone afterwards, whatever happened."""
    try:
        for world in [int(w) for w in args.worlds.split(",")]:
            for link in args.links.split(","):
                started = load()
                medians = run_config(world, None if link == "none" else link,
                                     args.sizes, args.rounds, args.timeout)
                model, plain = fit(world, medians), fit(world, medians, relative=False)
                report["configs"].append({"world": world, "link": link, "load": started,
                                          "median_s": medians, "fit": model,
                                          "fit_plain": plain})
                print(f"\nN={world} link={link} (tbf, no delay; load {started}): "
                      "median ms per all-reduce, model, residual")
                print(f"  {'floats':>9} {'bytes':>10} {'median ms':>10} {'model ms':>9}"
                      f" {'resid':>7}")
                for n, (t, p) in model["residuals"].items():
                    print(f"  {n:>9} {4 * n:>10} {t * 1e3:>10.3f} {p * 1e3:>9.3f} "
                          f"{(t - p) / t:>+7.1%}")
                for label, m in (("relative", model), ("plain", plain)):
                    print(f"  {label:>8} LS: alpha = {m['alpha_s'] * 1e6:.1f} us per step, "
                          f"beta = {m['beta_Bps'] * 8 / 1e9:.2f} Gbit/s, R^2 = "
                          f"{m['r2']:.4f}")
    finally:
        for name in _namespaces():
            if name.startswith(f"{PREFIX}{os.getpid()}-"):
                _delete_namespace(name)
    left = [n for n in _namespaces() if n.startswith(f"{PREFIX}{os.getpid()}-")]
    print(f"\nnamespaces left behind: {left or 'none'}")


def project(report: dict, delay_ms: float) -> None:
    """Print (and store in ``report``) the N=4 check and the weak-scaling tables."""
    steps = report["steps"]
    mlp = steps["mlp"]
    flop_rate = 6 * mlp["params"] * BATCH / mlp["step_s"]
    models = {"MLP": (mlp["params"], mlp["step_s"]),
              "CNN": (steps["cnn"]["params"], steps["cnn"]["step_s"]),
              "25M": (25e6, 6 * 25e6 * BATCH / flop_rate)}
    report["flop_rate"] = flop_rate
    print(f"\nstep time, batch {BATCH}, 1 BLAS thread (load {steps.get('load', '?')}): "
          + ", ".join(f"{k} {v[0]:,.0f} params {v[1] * 1e3:.1f} ms"
                      for k, v in models.items())
          + f" (25M: the MLP's {flop_rate / 1e9:.2f} GFLOP/s)")
    fits = {(c["world"], c["link"]): c["fit"] for c in report["configs"]}
    for config in report["configs"]:
        base = fits.get((2, config["link"]))
        if config["world"] > 2 and base is not None:
            errors = [(t - allreduce_seconds(config["world"], int(n), base["alpha_s"],
                                             base["beta_Bps"])) / t
                      for n, t in config["median_s"].items()]
            print(f"N={config['world']} {config['link']} predicted by the N=2 fit: "
                  "residuals " + " ".join(f"{e:+.0%}" for e in errors))
    projection = {}
    # The per-step software cost does not depend on the link: the median of every N=2
    # (relative) fit's alpha, plus the link's one-way delay (not on the wire here).
    alphas = [f["alpha_s"] for (world, _), f in fits.items() if world == 2]
    alpha = (statistics.median(alphas) if alphas else 0.0) + delay_ms / 1e3
    report["alpha_projection_s"] = alpha
    for gbit in (10, 25):
        measured = fits.get((2, f"{gbit}gbit"))
        if measured is None:
            continue
        here = next(c["fit_plain"]["beta_Bps"] for c in report["configs"]
                    if (c["world"], c["link"]) == (2, f"{gbit}gbit"))
        for label, beta in (("line rate", gbit * 1e9 / 8),
                            ("this box: plain LS at N=2", here)):
            print(f"\nweak scaling (batch {BATCH} per replica, no overlap), {gbit} Gbit/s "
                  f"link: alpha {alpha * 1e6:.0f} us (N=2 fits' median + {delay_ms} "
                  f"ms delay), beta {beta * 8 / 1e9:.2f} Gbit/s ({label})")
            print(f"  {'model':>5} " + " ".join(f"{'N=' + str(n):>7}" for n in NODES))
            for name, (params, step) in models.items():
                times = [allreduce_seconds(n, params, alpha, beta) for n in NODES]
                effs = [step / (step + t) for t in times]
                projection[f"{name}@{gbit}gbit/{label}"] = {
                    "step_s": step, "allreduce_s": times, "efficiency": effs}
                print(f"  {name:>5} " + " ".join(f"{e:>7.1%}" for e in effs))
    report["projection"] = projection


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--host", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--worlds", default="2,4")
    ap.add_argument("--links", default="none,1gbit,10gbit,25gbit",
                    help="tbf rates; 'none' for an unshaped link")
    ap.add_argument("--delay-ms", type=float, default=0.1,
                    help="one-way link delay added to alpha in the projection")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--step-times", default=None,
                    help="mlp=SECONDS,cnn=SECONDS to skip measuring them")
    ap.add_argument("--json", default=None, help="also write every figure here")
    ap.add_argument("--reproject", default=None,
                    help="a --json report: print its projection, measure nothing")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        worker(args)
        return
    if args.reproject:
        with open(args.reproject) as f:
            project(json.load(f), args.delay_ms)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (ip netns add)")

    def _stop(signum, _frame):
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, _stop)
    sweep_stale()
    report = {"load_start": load(), "configs": []}
    measure(args, report)
    if args.step_times:
        given = dict(kv.split("=") for kv in args.step_times.split(","))
        report["steps"] = {"mlp": {"params": 669_706, "step_s": float(given["mlp"])},
                           "cnn": {"params": 34_826, "step_s": float(given["cnn"])}}
    else:
        report["steps"] = dict(step_times(), load=load())
    project(report, args.delay_ms)
    report["load_end"] = load()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)


if __name__ == "__main__":
    main()
