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
from lamina.backend.config import (
    clear_session,
    epsilon,
    floatx,
    floatx_scope,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
    standardize_dtype,
)
from lamina.backend.tensor import Tensor, Variable

__all__ = [
    "Function", "Tensor", "Variable", "backward", "clear_session", "enable_grad", "epsilon",
    "floatx", "floatx_scope", "gradients", "image_data_format", "is_recording", "no_grad",
    "random", "set_epsilon", "set_floatx", "set_image_data_format", "standardize_dtype",
    "unbroadcast",
]
