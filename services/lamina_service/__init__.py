"""Lamina training service: HTTP API, Redis job queue, storage (never imports ray)."""
