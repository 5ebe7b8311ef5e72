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
    backend,
    clear_session,
    epsilon,
    floatx,
    floatx_scope,
    get_uid,
    image_data_format,
    is_float_dtype,
    is_int_dtype,
    result_type,
    set_epsilon,
    set_floatx,
    set_image_data_format,
    standardize_dtype,
)
from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.tensor import Tensor, Variable

__all__ = [
    "Function", "Tensor", "Variable", "backend", "backward", "clear_session", "get_uid",
    "is_float_dtype", "is_int_dtype", "is_keras_tensor", "result_type", "enable_grad", "epsilon",
    "floatx", "floatx_scope", "gradients", "image_data_format", "is_recording", "no_grad",
    "random", "set_epsilon", "set_floatx", "set_image_data_format", "standardize_dtype",
    "unbroadcast",
]


def is_keras_tensor(x) -> bool:
    """Whether ``x`` is a symbolic tensor of the functional API."""
    return isinstance(x, KerasTensor)
