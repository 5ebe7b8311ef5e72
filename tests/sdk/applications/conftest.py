"""Fixtures for the application tests: a local HTTP server (the test machines have no
internet) and a private Keras cache (``KERAS_HOME``)."""

from tests.sdk.download_fixtures import http_server, keras_home  # noqa: F401
