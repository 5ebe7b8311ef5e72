"""HTTP API: ``create_app(settings)``."""

from lamina_service.api.app import create_app

__all__ = ["create_app"]
