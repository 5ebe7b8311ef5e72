"""Lamina's numpy backend: tensors, variables and reverse-mode autodiff."""

from lamina.backend import random
from lamina.backend.autodiff import (
    Function,
    backward,
    enable_grad,
    gradients,
    is_recording,
    no_grad,
    unbroadcast,
)
from lamina.backend.config import floatx, floatx_scope, set_floatx, standardize_dtype
from lamina.backend.tensor import Tensor, Variable

__all__ = [
    "Function", "Tensor", "Variable", "backward", "enable_grad", "floatx", "floatx_scope",
    "gradients", "is_recording", "no_grad", "random", "set_floatx", "standardize_dtype",
    "unbroadcast",
]
