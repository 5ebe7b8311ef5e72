"""The ``lamina`` command: run the service's parts and drive remote jobs.

``lamina up`` runs the whole stack on this machine, ``lamina demo`` trains an
example on it, ``lamina warm`` compiles Lamina's kernels into numba's cache;
``lamina api`` / ``lamina worker`` run one part of a cluster; ``jobs``, ``status``,
``logs``, ``cancel`` and ``download`` talk to an API (``--url`` or ``$LAMINA_URL``,
key from ``--api-key`` or ``$LAMINA_API_KEY``).

Service and worker code is imported only by the commands that run them, so the
client commands work with ``lamina[client]`` alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from lamina.client.protocol import JOB_STATUSES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None,
                        help="API base URL (default $LAMINA_URL or http://127.0.0.1:8000)")
    parser.add_argument("--api-key", default=None, help="API key (default $LAMINA_API_KEY)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = sub.add_parser("api", help="run the HTTP API (settings from LAMINA_* variables)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1,
                     help="API processes behind the port (default 1; metrics in multiprocess mode)")

    sub.add_parser("worker", add_help=False,
                   help="run a training worker (lamina worker --help for its options)")

    up = sub.add_parser("up", help="run Redis, Ray, the API and workers locally (Ctrl-C stops)")
    _stack_arguments(up, port=8000)

    sub.add_parser("jobs", help="list your jobs").add_argument(
        "--status", choices=list(JOB_STATUSES))
    for name, text in (("status", "show a job"), ("cancel", "cancel a job")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("job_id")
        if name == "status":
            cmd.add_argument("--json", action="store_true", help="print the JSON record")
    logs = sub.add_parser("logs", help="a job's per-epoch logs (--follow: live progress)")
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true")
    download = sub.add_parser("download", help="save a job's trained model (.keras)")
    download.add_argument("job_id")
    download.add_argument("-o", "--output", default=None, help="file (default <id>.keras)")

    warm = sub.add_parser("warm", help="compile Lamina's kernels into numba's cache, so that "
                                       "later processes (a worker's replicas) load them")
    warm.add_argument("--no-replicas", action="store_true",
                      help="skip the two-process data-parallel fit")
    warm.add_argument("--json", action="store_true", help="print the counts as JSON")

    demo = sub.add_parser("demo", help="start the local stack, train an example remotely "
                                       "with 2 replicas, print its accuracy, stop")
    _stack_arguments(demo, port=None)
    demo.add_argument("--replicas", type=int, default=2)
    demo.add_argument("--epochs", type=int, default=10)
    return parser


def _stack_arguments(cmd: argparse.ArgumentParser, port: int | None) -> None:
    cmd.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    cmd.add_argument("--host", default="127.0.0.1", help="API interface (default loopback)")
    cmd.add_argument("--port", type=int, default=port,
                     help="API port" + (f" (default {port})" if port else " (default: free)"))
    cmd.add_argument("--root", default=None,
                     help="folder for storage, Redis data and logs (default: temporary)")


def _client(args):
    from lamina.client import Client

    return Client(args.url, api_key=args.api_key)


# -- commands ----------------------------------------------------------------------------
def cmd_api(args) -> int:
    from lamina_service.__main__ import serve

    if args.workers < 1:
        raise SystemExit(f"lamina api: --workers must be at least 1. Received: {args.workers}")
    serve(host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_worker(argv: list[str]) -> int:
    from lamina_worker.main import main as worker_main

    return int(worker_main(argv) or 0)


def cmd_up(args) -> int:
    from lamina_service.embedded import EmbeddedStack

    stack = EmbeddedStack(workers=args.workers, port=args.port, host=args.host, root=args.root)
    print(f"starting Redis, Ray, the API and {args.workers} worker(s)...", flush=True)
    try:
        stack.start()
    except KeyboardInterrupt:
        return 130
    print(f"Lamina is up at {stack.url}  (web page {stack.url}/, API docs {stack.url}/docs)\n"
          f"  AUTH IS OFF (embedded mode): anyone who can reach {args.host}:{stack.port} "
          f"can submit jobs\n"
          f"  storage {stack.storage}, logs {stack.logs}\n"
          f"  export LAMINA_URL={stack.url}    # for lamina jobs / status / logs\n"
          "Press Ctrl-C to stop.", flush=True)
    try:
        stack.wait()
    except KeyboardInterrupt:
        print("\nstopping (running jobs are checkpointed and requeued)...", flush=True)
    finally:
        stack.stop()
    print("stopped.")
    return 0


def _when(stamp) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def cmd_jobs(args) -> int:
    jobs = _client(args).jobs(status=args.status)
    print(f"{'ID':<27} {'STATUS':<10} {'EPOCH':>5} {'ATTEMPTS':>8}  {'SUBMITTED':<19}  NAME")
    for job in jobs:
        epoch = "-" if job.epoch is None else str(job.epoch + 1)
        print(f"{job.id:<27} {job.status:<10} {epoch:>5} {job.attempts:>8}  "
              f"{_when(job.submitted_at):<19}  {job.name or ''}")
    return 0


def _last(history: dict) -> str:
    return "  ".join(f"{k}={v[-1]:.4f}" for k, v in sorted(history.items())
                     if v and v[-1] is not None)


def cmd_status(args) -> int:
    job = _client(args).job(args.job_id)
    if args.json:
        print(json.dumps(job.record, indent=2, sort_keys=True))
        return 0
    epochs = (job.spec or {}).get("fit", {}).get("epochs")
    done = 0 if job.epoch is None else job.epoch + 1
    print(f"job       {job.id}  {job.name or ''}\n"
          f"status    {job.status}\n"
          f"attempts  {job.attempts}\n"
          f"epoch     {done}/{epochs}\n"
          f"submitted {_when(job.submitted_at)}  started {_when(job.started_at)}  "
          f"finished {_when(job.finished_at)}\n"
          f"worker    {job.worker or '-'}")
    if job.history:
        print(f"last      {_last(job.history)}")
    if job.error:
        print(f"error     {job.error}")
    return 0


def cmd_logs(args) -> int:
    job = _client(args).job(args.job_id)
    if args.follow:
        from lamina.client import JobError

        try:
            job.wait(verbose=1)
        except JobError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(f"job {job.id} {job.status}")
        return 0
    history = job.history
    length = max((len(v) for v in history.values()), default=0)
    for epoch in range(length):
        values = " - ".join(f"{k}: {v[epoch]:.4f}" for k, v in sorted(history.items())
                            if epoch < len(v) and v[epoch] is not None)
        print(f"Epoch {epoch + 1}: {values}")
    print(f"job {job.id} {job.status}" + (f": {job.error}" if job.error else ""))
    return 0


def cmd_cancel(args) -> int:
    job = _client(args).job(args.job_id).cancel()
    state = "cancel requested (stops after its current batch)" if (
        job.status == "running") else job.status
    print(f"job {job.id}: {state}")
    return 0


def cmd_download(args) -> int:
    path = _client(args).job(args.job_id).download(args.output or f"{args.job_id}.keras")
    print(path)
    return 0


def cmd_demo(args) -> int:
    from lamina.client.demo import run_demo
    from lamina_service.embedded import EmbeddedStack

    print(f"starting the local stack (Redis, Ray, the API, {args.workers} worker(s))...",
          flush=True)
    started = time.monotonic()
    with EmbeddedStack(workers=args.workers, port=args.port, host=args.host,
                       root=args.root) as stack:
        print(f"stack up at {stack.url} in {time.monotonic() - started:.0f}s", flush=True)
        accuracy = run_demo(stack.url, replicas=args.replicas, epochs=args.epochs)
    print("stack stopped.")
    return 0 if accuracy >= 0.8 else 1


def cmd_warm(args) -> int:
    from lamina.backend import warm

    try:
        result = warm.warm(replicas=not args.no_replicas)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else warm.describe(result))
    return 0


COMMANDS = {"api": cmd_api, "up": cmd_up, "jobs": cmd_jobs, "status": cmd_status,
            "logs": cmd_logs, "cancel": cmd_cancel, "download": cmd_download,
            "demo": cmd_demo, "warm": cmd_warm}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lamina`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        return cmd_worker(argv[1:])
    args = _parser().parse_args(argv)
    if args.command in ("up", "demo", "api"):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    from lamina.client import LaminaError

    try:
        return COMMANDS[args.command](args)
    except LaminaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if type(exc).__name__ != "StackError":  # the embedded stack's, imported lazily
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
