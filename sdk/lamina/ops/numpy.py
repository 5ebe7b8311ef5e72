"""The numpy namespace of ``keras.ops`` (``keras.ops.numpy``): the same functions as ``ops``.

Keras files its numpy-like functions here and re-exports them at ``keras.ops``; Lamina
defines each once in its family module and lists here the ones Keras puts in this
namespace. The ``numpy_*`` modules hold the functions that only this namespace has
(elementwise math, bitwise ops, statistics, searching, joins and splits, constructors).
"""

from __future__ import annotations

from lamina.ops import (
    numpy_bitwise,
    numpy_create,
    numpy_math,
    numpy_search,
    numpy_shape,
    numpy_stats,
)
from lamina.ops.core import (  # noqa: F401
    arange,
    equal,
    eye,
    full,
    full_like,
    greater,
    greater_equal,
    identity,
    isfinite,
    isinf,
    isnan,
    less,
    less_equal,
    linspace,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    not_equal,
    ones,
    ones_like,
    zeros,
    zeros_like,
)
from lamina.ops.indexing import (  # noqa: F401
    argsort,
    nonzero,
    sort,
    take_along_axis,
)
from lamina.ops.linalg import (  # noqa: F401
    diag,
    dot,
    einsum,
    matmul,
    outer,
    tensordot,
    tril,
    triu,
)
from lamina.ops.manipulation import (  # noqa: F401
    broadcast_to,
    concatenate,
    expand_dims,
    flip,
    meshgrid,
    moveaxis,
    pad,
    repeat,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    swapaxes,
    take,
    tile,
    transpose,
)
from lamina.ops.math import (  # noqa: F401
    abs,
    add,
    ceil,
    clip,
    cos,
    divide,
    exp,
    expm1,
    floor,
    floor_divide,
    log,
    log1p,
    log2,
    log10,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    power,
    reciprocal,
    round,
    select,
    sign,
    sin,
    sqrt,
    square,
    subtract,
    tanh,
    true_divide,
    where,
)
from lamina.ops.numpy_bitwise import *  # noqa: F403
from lamina.ops.numpy_create import *  # noqa: F403
from lamina.ops.numpy_math import *  # noqa: F403
from lamina.ops.numpy_search import *  # noqa: F403
from lamina.ops.numpy_shape import *  # noqa: F403
from lamina.ops.numpy_stats import *  # noqa: F403
from lamina.ops.reduction import (  # noqa: F401
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    average,
    count_nonzero,
    cumprod,
    cumsum,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)

_EXISTING = [
    "abs", "add", "all", "amax", "amin", "any", "arange", "argmax", "argmin", "argsort",
    "average", "broadcast_to", "ceil", "clip", "concatenate", "cos", "count_nonzero", "cumprod",
    "cumsum", "diag", "divide", "dot", "einsum", "equal", "exp", "expand_dims", "expm1", "eye",
    "flip", "floor", "floor_divide", "full", "full_like", "greater", "greater_equal",
    "identity", "isfinite", "isinf", "isnan", "less", "less_equal", "linspace", "log", "log10",
    "log1p", "log2", "logical_and", "logical_not", "logical_or", "logical_xor", "matmul", "max",
    "maximum", "mean", "meshgrid", "min", "minimum", "mod", "moveaxis", "multiply", "negative",
    "nonzero", "not_equal", "ones", "ones_like", "outer", "pad", "power", "prod", "reciprocal",
    "repeat", "reshape", "roll", "round", "select", "sign", "sin", "sort", "split", "sqrt",
    "square", "squeeze", "stack", "std", "subtract", "sum", "swapaxes", "take",
    "take_along_axis", "tanh", "tensordot", "tile", "transpose", "tril", "triu", "true_divide",
    "var", "where", "zeros", "zeros_like",
]

NUMPY_ONLY = sorted({*numpy_bitwise.__all__, *numpy_create.__all__, *numpy_math.__all__,
                     *numpy_search.__all__, *numpy_shape.__all__, *numpy_stats.__all__})
__all__ = sorted({*_EXISTING, *NUMPY_ONLY})
