"""``python -m lamina_service [--host H] [--port P] [--workers N]``: run the API with uvicorn."""

from __future__ import annotations

import argparse
import os
import tempfile

from lamina_service.config import Settings, get_settings


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> None:
    """Run the API until interrupted (the ``lamina api`` command).

    Args:
        settings: configuration; the environment's by default. With ``workers > 1``
            each process reads the environment itself, so ``settings`` must be None.
        host: interface to bind.
        port: TCP port.
        workers: API processes sharing the port. They share no state that matters
            (jobs, quotas and rate limits live in Redis; stream caps are per process);
            their metrics are merged through ``PROMETHEUS_MULTIPROC_DIR`` (a fresh
            temporary directory unless set).

    Raises:
        ValueError: ``workers`` < 1, or explicit ``settings`` with several workers.
    """
    import uvicorn

    if workers < 1:
        raise ValueError(f"workers must be >= 1; received workers={workers}")
    if workers == 1:
        from lamina_service.api import create_app

        uvicorn.run(create_app(settings or get_settings()), host=host, port=port,
                    log_level="info", timeout_graceful_shutdown=5)
        return
    if settings is not None:
        raise ValueError("several API processes read their settings from LAMINA_* "
                         f"variables; received settings and workers={workers}")
    get_settings()  # fail fast here, not in each child
    with tempfile.TemporaryDirectory(prefix="lamina-metrics-") as scratch:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", scratch)
        uvicorn.run("lamina_service.api:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", timeout_graceful_shutdown=5)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="lamina_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    args = parser.parse_args(argv)
    serve(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
