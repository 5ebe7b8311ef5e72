"""``keras.mixed_precision``: policies accepted, computed in float32 (see dtype_policies)."""

from __future__ import annotations

from lamina.config import dtype_policy, set_dtype_policy
from lamina.dtype_policies import DTypePolicy

__all__ = ["DTypePolicy", "Policy", "dtype_policy", "global_policy", "set_dtype_policy",
           "set_global_policy"]

Policy = DTypePolicy
global_policy = dtype_policy
set_global_policy = set_dtype_policy


def __getattr__(name):
    # The optimizers package may land LossScaleOptimizer; export it when it exists.
    if name == "LossScaleOptimizer":
        from lamina import optimizers

        if hasattr(optimizers, "LossScaleOptimizer"):
            return optimizers.LossScaleOptimizer
    raise AttributeError(f"module 'lamina.mixed_precision' has no attribute {name!r}")
