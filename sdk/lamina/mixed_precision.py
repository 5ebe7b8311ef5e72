"""``keras.mixed_precision``: policies accepted, computed in float32 (see dtype_policies)."""

from __future__ import annotations

from lamina.config import dtype_policy, set_dtype_policy
from lamina.dtype_policies import DTypePolicy
from lamina.optimizers import LossScaleOptimizer

__all__ = ["DTypePolicy", "LossScaleOptimizer", "Policy", "dtype_policy", "global_policy",
           "set_dtype_policy", "set_global_policy"]

Policy = DTypePolicy
global_policy = dtype_policy
set_global_policy = set_dtype_policy

