"""Lamina: Keras, rebuilt on numpy so that it trains.

``import lamina as keras`` and a Keras script runs: layers, models,
``compile``/``fit``/``evaluate``/``predict``, losses, metrics, optimizers,
callbacks and Keras-compatible files.
"""

__version__ = "0.1.0"

from lamina import (  # noqa: E402
    activations,
    backend,
    callbacks,
    constraints,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    regularizers,
    utils,
)
from lamina.backend.keras_tensor import KerasTensor  # noqa: E402
from lamina.backend.tensor import Variable  # noqa: E402
from lamina.layers import Input  # noqa: E402
from lamina.models import Model, Sequential  # noqa: E402

__all__ = [
    "Input", "KerasTensor", "Model", "Sequential", "Variable", "activations", "backend",
    "callbacks", "constraints", "datasets", "initializers", "layers", "losses", "metrics",
    "models", "ops", "optimizers", "regularizers", "saving", "utils", "version",
]

def version() -> str:
    """Lamina's version (``keras.version()``)."""
    return __version__


# Loaded on first use: `saving` needs h5py, `datasets` mlxtend/scikit-learn.
_LAZY_MODULES = ("applications", "config", "datasets", "preprocessing", "random", "saving",
                 "tree", "wrappers")


def __getattr__(name):
    # The HTTP client is loaded on first use, so `import lamina` never needs httpx.
    if name == "Client":
        from lamina.client import Client

        return Client
    if name in _LAZY_MODULES:
        import importlib

        try:
            return importlib.import_module(f"lamina.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lamina.{name}":
                raise
            raise AttributeError(f"module 'lamina' has no attribute {name!r}") from None
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")
