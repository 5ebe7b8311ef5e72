"""Fixtures for the download tests: a local HTTP server and a private Keras cache."""

from tests.sdk.download_fixtures import http_server, keras_home  # noqa: F401
