"""``python -m lamina_service [--host H] [--port P]``: run the API with uvicorn."""

from __future__ import annotations

import argparse

from lamina_service.config import Settings, get_settings


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API in this process until interrupted (the ``lamina api`` command).

    Args:
        settings: configuration; the environment's by default.
        host: interface to bind.
        port: TCP port.
    """
    import uvicorn

    from lamina_service.api import create_app

    uvicorn.run(create_app(settings or get_settings()), host=host, port=port,
                log_level="info", timeout_graceful_shutdown=5)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="lamina_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    serve(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
