"""Differentiable operations with Keras's names (``keras.ops``), on numpy.

Every function accepts Tensors, ndarrays or Python numbers and returns a Tensor.
Primitives come from :mod:`lamina.backend.primitives` and :mod:`lamina.backend.nn`;
everything here is composed from them and never hand-writes a gradient.
Functions that are not differentiable (comparisons, logical ops, argmax, rounding,
constructors) return Tensors that carry no gradient. On ``KerasTensor``s every op
records a node of the functional graph, as in Keras 3.

Modules by family: ``core`` (conversion, casting, comparisons, logical ops,
constructors), ``math`` (elementwise), ``reduction`` (reductions, cumulative sums and
products), ``manipulation`` (views, joins, gathers), ``indexing`` (take_along_axis,
slice, sort, top_k), ``linalg`` (matmul, einsum, tensordot, triangles), ``activations``,
``nn`` (dense, dropout, cross-entropies, normalize); the convolution and pooling ops
are :mod:`lamina.backend.conv_ops`'s.

Example:
    >>> from lamina import ops
    >>> x = ops.convert_to_tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> ops.sum(ops.square(x)).item()
    30.0
"""

from __future__ import annotations

from lamina.backend import conv_ops as _conv_ops
from lamina.ops import (
    activations,
    control_flow,
    core,
    ctc,
    decompositions,
    einops,
    image,  # noqa: F401 - the keras.ops.image namespace
    indexing,
    linalg,
    manipulation,
    math,
    nn,
    numpy,
    reduction,
    segment,
    signal,
    special,
    transforms,
)
from lamina.ops.activations import *  # noqa: F403
from lamina.ops.control_flow import *  # noqa: F403
from lamina.ops.core import *  # noqa: F403
from lamina.ops.ctc import *  # noqa: F403
from lamina.ops.decompositions import *  # noqa: F403
from lamina.ops.einops import *  # noqa: F403

# keras.ops has none of ops.image's names; the first six stay importable here.
from lamina.ops.image import (  # noqa: F401
    crop_images,
    hsv_to_rgb,
    pad_images,
    rgb_to_grayscale,
    rgb_to_hsv,
    sobel_edges,
)
from lamina.ops.indexing import *  # noqa: F403
from lamina.ops.linalg import *  # noqa: F403
from lamina.ops.manipulation import *  # noqa: F403
from lamina.ops.math import *  # noqa: F403
from lamina.ops.nn import *  # noqa: F403
from lamina.ops.numpy import *  # noqa: F403
from lamina.ops.operation import dispatch_symbolic as _dispatch_symbolic
from lamina.ops.reduction import *  # noqa: F403
from lamina.ops.segment import *  # noqa: F403
from lamina.ops.signal import *  # noqa: F403
from lamina.ops.special import *  # noqa: F403
from lamina.ops.transforms import *  # noqa: F403

_CONV_OPS = ("average_pool", "conv", "conv_transpose", "depthwise_conv", "max_pool",
             "separable_conv")
for _name in _CONV_OPS:
    globals()[_name] = _dispatch_symbolic(getattr(_conv_ops, _name))
del _name

# Ops whose numerics are checked in their own tables (tests/sdk/backend/test_ops_nn.py,
# test_ops_linalg.py, test_ops_numpy*.py, ...) rather than test_ops.py's; the coverage test
# there reads this set. All of them are in ``__all__``.
_TESTED_IN_OPS_NN = frozenset({
    "crop_images", "hsv_to_rgb", "pad_images", "rgb_to_grayscale", "rgb_to_hsv",
    "sobel_edges",
    "adaptive_average_pool",
    "adaptive_max_pool", "fold", "unfold",
    "cholesky", "cholesky_inverse", "det", "inv", "matrix_rank", "solve", "solve_triangular",
    "batch_normalization", "celu", "depth_to_space", "dot_product_attention", "glu",
    "hard_shrink", "hard_swish", "hard_tanh", "layer_normalization", "moments", "multi_hot",
    "psnr", "rms_normalization", "soft_shrink", "space_to_depth", "sparse_plus",
    "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink", "threshold",
    # tests/sdk/backend/test_ops_control_flow.py
    *control_flow.__all__, *transforms.__all__,
    *decompositions.__all__,  # test_ops_linalg.py
    *ctc.__all__,  # test_ops_ctc.py
    *signal.__all__,  # test_ops_signal.py
    *segment.__all__, *special.__all__, *einops.__all__,  # test_ops_segment.py
    *numpy.NUMPY_ONLY,  # test_ops_numpy*.py
})

__all__ = sorted({
    *activations.__all__, *core.__all__, *numpy.__all__, *indexing.__all__,
    *linalg.__all__, *manipulation.__all__, *math.__all__, *nn.__all__, *reduction.__all__,
    *control_flow.__all__, *transforms.__all__, *decompositions.__all__,
    *ctc.__all__, *signal.__all__, *segment.__all__, *special.__all__, *einops.__all__,
    *_CONV_OPS,
})
