"""Lamina: Keras, rebuilt on numpy so that it trains.

``import lamina as keras`` and a Keras script runs: layers, models,
``compile``/``fit``/``evaluate``/``predict``, losses, metrics, optimizers,
callbacks and Keras-compatible files.
"""

__version__ = "0.1.0"

import contextlib  # noqa: E402

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
from lamina.backend.scopes import StatelessScope, SymbolicScope, name_scope  # noqa: E402
from lamina.backend.tensor import Variable  # noqa: E402
from lamina.dtype_policies import DTypePolicy, FloatDTypePolicy  # noqa: E402
from lamina.initializers import Initializer  # noqa: E402
from lamina.layers import Input, InputSpec, Layer  # noqa: E402
from lamina.losses import Loss  # noqa: E402
from lamina.metrics import Metric  # noqa: E402
from lamina.models import Model, Sequential  # noqa: E402
from lamina.ops.function import Function  # noqa: E402
from lamina.ops.operation import Operation  # noqa: E402
from lamina.optimizers import Optimizer  # noqa: E402
from lamina.regularizers import Regularizer  # noqa: E402

# FeatureSpace (and its Feature/Cross) must resolve when a saved file is loaded, even
# before `lamina.utils.FeatureSpace` is first touched (lamina.utils itself imports no layers).
from lamina.utils import feature_space as _feature_space  # noqa: E402, F401

__all__ = [
    "DTypePolicy", "FloatDTypePolicy", "Function", "Initializer", "Input", "InputSpec",
    "KerasTensor", "Layer",
    "Loss", "Metric", "Model", "Operation", "Optimizer", "Regularizer", "Sequential",
    "StatelessScope", "SymbolicScope", "Variable", "activations", "name_scope",
    "applications",
    "backend", "callbacks", "config", "constraints", "datasets", "device", "distillation",
    "dtype_policies", "initializers", "layers", "legacy", "losses", "metrics", "mixed_precision",
    "models", "ops", "optimizers", "preprocessing", "quantizers", "random", "regularizers",
    "saving", "Quantizer",
    "tree", "utils", "version", "visualization",
]

def version() -> str:
    """Lamina's version (``keras.version()``)."""
    return __version__


# Loaded on first use: `saving` needs h5py, `datasets` mlxtend/scikit-learn.
_LAZY_MODULES = ("applications", "config", "datasets", "distillation", "dtype_policies", "legacy",
                 "mixed_precision", "preprocessing", "quantizers", "random", "saving", "tree",
                 "visualization", "wrappers")


@contextlib.contextmanager
def device(device_name):
    """``keras.device``: place computation on a device; numpy has only the CPU.

    Args:
        device_name: ``"cpu"``, ``"cpu:0"``, ``"/cpu:0"`` or ``"/device:CPU:0"``.

    Raises:
        ValueError: for any other device.
    """
    name = device_name.lower().lstrip("/") if isinstance(device_name, str) else ""
    if name.removeprefix("device:").split(":")[0] != "cpu":
        raise ValueError("Lamina computes on the CPU (numpy) only. "
                         f"Received: device_name={device_name!r}")
    yield


def __getattr__(name):
    # The HTTP client is loaded on first use, so `import lamina` never needs httpx.
    if name == "Client":
        from lamina.client import Client

        return Client
    if name == "Quantizer":  # keras.Quantizer, from the lazily loaded quantizers
        from lamina.quantizers import Quantizer

        return Quantizer
    if name in _LAZY_MODULES:
        import importlib

        try:
            return importlib.import_module(f"lamina.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lamina.{name}":
                raise
            raise AttributeError(f"module 'lamina' has no attribute {name!r}") from None
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")
