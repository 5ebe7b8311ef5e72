"""Lamina: Keras, rebuilt on numpy so that it trains.

``import lamina as keras`` and a Keras script runs: layers, models,
``compile``/``fit``/``evaluate``/``predict``, losses, metrics, optimizers,
callbacks and Keras-compatible files.
"""

__version__ = "0.1.0"

from lamina import backend, ops, utils  # noqa: E402
from lamina import activations, constraints, initializers, regularizers  # noqa: E402
from lamina import losses, metrics, optimizers  # noqa: E402
from lamina import callbacks, layers, models  # noqa: E402
from lamina.layers import Input  # noqa: E402
from lamina.models import Model, Sequential  # noqa: E402

__all__ = [
    "Input", "Model", "Sequential", "activations", "backend", "callbacks", "constraints",
    "initializers", "layers", "losses", "metrics", "models", "ops", "optimizers",
    "regularizers", "utils",
]


def __getattr__(name):
    # The HTTP client is loaded on first use, so `import lamina` never needs httpx.
    if name == "Client":
        from lamina.client import Client

        return Client
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")
