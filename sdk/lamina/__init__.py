"""Lamina: Keras, rebuilt on numpy so that it trains.

``import lamina as keras`` and a Keras script runs: layers, models,
``compile``/``fit``/``evaluate``/``predict``, losses, metrics, optimizers,
callbacks and Keras-compatible files.
"""

__version__ = "0.1.0"

from lamina import backend, ops  # noqa: E402

__all__ = ["backend", "ops"]
