"""``lamina worker``: run training jobs from the queue on Ray replicas.

Redis, storage, lease and attempts come from the same ``LAMINA_`` settings as the
API (:class:`lamina_service.config.Settings`). Without ``--ray-address`` a local
Ray is started in-process. SIGTERM/SIGINT: the running job finishes its current
step, writes a checkpoint and is requeued (the attempt is not counted); then
the process exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

log = logging.getLogger("lamina_worker")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lamina worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=None,
                   help="most replicas (Ray actors) per job; default: as the job asks")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (default: start a local Ray)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus /metrics on this port")
    p.add_argument("--replica-cpus", type=float, default=1.0,
                   help="num_cpus reserved by each replica actor (default 1)")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="also checkpoint every N steps (default: epoch ends only)")
    p.add_argument("--worker-id", default=None, help="consumer name (default host-pid)")
    p.add_argument("--block-ms", type=int, default=1000, help="how long a claim waits")
    p.add_argument("--log-level", default="INFO")
    return p


def _package_paths() -> list[str]:
    """Folders holding lamina, lamina_service and lamina_worker (for Ray's actors)."""
    import lamina
    import lamina_service

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.path.dirname(os.path.dirname(os.path.abspath(lamina.__file__))),
            os.path.dirname(os.path.dirname(os.path.abspath(lamina_service.__file__))), here]


def init_ray(address: str | None) -> None:
    """Join ``address`` or start a local Ray, with our packages importable by actors.

    A joined Ray is driven from a child process (:mod:`lamina_worker.raylink`), so a
    restart of the Ray head ends the running attempt (retried), not the worker."""
    import ray

    if ray.is_initialized():
        return
    paths = _package_paths()
    existing = os.environ.get("PYTHONPATH")
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        paths + ([existing] if existing else []))}}
    if address is not None:
        from lamina_worker import raylink

        raylink.use_child(address, runtime_env).connect()
        return
    ray.init(runtime_env=runtime_env, log_to_driver=False, configure_logging=False,
             include_dashboard=False)


def _log_blas() -> None:
    """numpy's BLAS in this process (replicas started here inherit its environment), and
    a warning when OPENBLAS_CORETYPE holds it below the CPU (an operator's setting)."""
    from lamina.backend import gemm
    from lamina.backend.blas_threads import describe_blas

    blas = describe_blas()
    log.info("numpy's BLAS: %s %s, %s kernels (OPENBLAS_CORETYPE=%s); float32 GEMM: %s",
             blas["library"], blas["version"], blas["core"], blas["coretype_env"] or "unset",
             gemm.describe())
    if blas["note"]:
        log.warning("%s", blas["note"])


def main(argv: list[str] | None = None) -> int:
    """Run the worker; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from lamina_service.config import Settings
    from lamina_service.diskio import sweep_temps
    from lamina_worker import metrics
    from lamina_worker.loop import Worker

    settings = Settings()
    sweep_temps(settings.storage_root)  # temp files of writers killed before this start
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    init_ray(args.ray_address)
    worker = Worker(settings, worker_id=args.worker_id, max_replicas=args.replicas,
                    replica_cpus=args.replica_cpus,
                    checkpoint_every=args.checkpoint_every, burst=args.burst,
                    block_ms=args.block_ms)

    def _stop(signum, frame):
        log.info("signal %d: finishing the current step, then requeueing", signum)
        worker.request_shutdown()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker %s ready (redis %s, storage %s)", worker.worker_id,
             settings.redis_url.rsplit("@", 1)[-1], settings.storage_root)
    _log_blas()
    handled = worker.run()
    log.info("worker %s exiting after %d attempts", worker.worker_id, handled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
