"""The dashboard tests reuse the service tests' fixtures: real Redis, settings, app, uvicorn."""

from tests.service.conftest import app, client, live_server, settings  # noqa: F401
