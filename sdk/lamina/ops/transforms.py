"""Function transformations: ``custom_gradient`` and ``jvp`` (Keras's ``ops.linalg.jvp``).

``custom_gradient`` links a user-written vector-Jacobian product into the tape as one
node. ``jvp`` computes Jacobian-vector products exactly with the reverse-mode tape:
``J t`` has one entry per output element ``k``, the dot product of the row ``e_k^T J``
(one backward walk seeded with ``e_k``) with ``t``. No finite differences are taken; the
cost is one backward walk per output element, so it suits small outputs.
"""

from __future__ import annotations

import functools

import numpy as np

from lamina import tree
from lamina.backend.autodiff import Function, enable_grad, gradients, no_grad
from lamina.backend.tensor import Tensor
from lamina.ops.core import convert_to_tensor
from lamina.ops.operation import dispatch_symbolic

__all__ = ["custom_gradient", "jvp"]


class _CustomGradient(Function):
    """The output of a ``custom_gradient`` function; its VJP is the user's ``grad_fn``."""

    __slots__ = ("grad_fn", "count")

    def forward(self, *arrays, value, grad_fn):
        self.grad_fn, self.count = grad_fn, len(arrays)
        return value

    def backward(self, g):
        with no_grad():
            grads = self.grad_fn(Tensor(g))
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if len(grads) != self.count:
            raise ValueError(
                f"The gradient function of a `custom_gradient` must return one gradient per "
                f"positional input ({self.count}). Received: {len(grads)} gradients")
        return tuple(None if gr is None else
                     np.asarray(gr.data if isinstance(gr, Tensor) else gr) for gr in grads)


def custom_gradient(f):
    """Decorate ``f`` so that its gradient is the one it defines itself.

    ``f(*args)`` returns ``(output, grad_fn)``; ``grad_fn(upstream)`` returns the gradient
    of each positional argument (a Tensor, or a tuple with one entry per argument, ``None``
    for none). ``grad_fn`` may also be written ``grad_fn(*args, upstream=None)``, as in
    Keras's example: it is called with the upstream gradient as its one positional
    argument. ``f`` runs without recording, so only ``grad_fn`` defines the gradient.

    Args:
        f: the function to decorate.

    Returns:
        The decorated function (it also records a graph node on KerasTensors).

    Example:
        >>> from lamina import ops
        >>> @ops.custom_gradient
        ... def clipped_identity(x):
        ...     return x, lambda g: ops.clip(g, -1.0, 1.0)
        >>> float(clipped_identity(ops.convert_to_tensor(2.0)).item())
        2.0
    """
    if not callable(f):
        raise TypeError(f"`f` should be a callable. Received: f={f!r}")

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        with no_grad():
            detached = [Tensor(a.data) if isinstance(a, Tensor) else a for a in args]
            result = f(*detached, **kwargs)
        if not (isinstance(result, (tuple, list)) and len(result) == 2 and callable(result[1])):
            raise ValueError(
                "A function decorated with `custom_gradient` must return "
                f"`(output, grad_fn)`. Received: {result!r}")
        value, grad_fn = result
        value = convert_to_tensor(value)
        return _CustomGradient.apply(*args, value=value.data, grad_fn=grad_fn)

    return dispatch_symbolic(wrapped)


def _leaf(x) -> Tensor:
    return Tensor(np.array(np.asarray(x.data if isinstance(x, Tensor) else x)),
                  requires_grad=True)


def jvp(fun, primals, tangents, has_aux=False):
    """The Jacobian-vector product of ``fun`` at ``primals`` along ``tangents``.

    Args:
        fun: callable taking ``*primals``, returning a Tensor or a nested structure of
            Tensors (with ``has_aux``: a pair ``(output, aux)``).
        primals: a tuple or list of the arguments of ``fun``.
        tangents: the tangent vectors, in the structure of ``primals``; each has its
            primal's shape or broadcasts to it (a tangent shared by a batch).
        has_aux: whether ``fun`` returns auxiliary data to pass through.

    Returns:
        ``(primals_out, tangents_out)``, or ``(primals_out, tangents_out, aux)`` with
        ``has_aux``; ``tangents_out`` has ``primals_out``'s structure.

    Raises:
        ValueError: when ``primals`` is not a tuple/list or ``tangents`` does not match it.
    """
    if not isinstance(primals, (tuple, list)):
        raise ValueError(f"`primals` must be a tuple or a list of arguments. "
                         f"Received: primals={primals!r}")
    flat_p, flat_t = tree.flatten(primals), tree.flatten(tangents)
    if len(flat_p) != len(flat_t):
        raise ValueError(f"`tangents` must have the structure of `primals`. "
                         f"Received: tangents={tangents!r}")
    leaves = [_leaf(p) for p in flat_p]
    tans = [np.asarray(t.data if isinstance(t, Tensor) else t, dtype=np.float64) for t in flat_t]
    for i, (leaf, t) in enumerate(zip(leaves, tans)):
        try:
            tans[i] = np.broadcast_to(t, leaf.data.shape)
        except ValueError:
            raise ValueError(f"Each tangent must have (or broadcast to) its primal's shape. "
                             f"Received: tangent shape {t.shape} for a primal of shape "
                             f"{leaf.data.shape}") from None
    with enable_grad():
        out = fun(*tree.pack_sequence_as(primals, leaves))
    aux = None
    if has_aux:
        out, aux = out
    flat_out = [convert_to_tensor(o) for o in tree.flatten(out)]
    tangents_out = [_tangent(o, leaves, tans) for o in flat_out]
    primals_out = tree.pack_sequence_as(out, [Tensor(o.data) for o in flat_out])
    tangents_out = tree.pack_sequence_as(out, tangents_out)
    if has_aux:
        return primals_out, tangents_out, aux
    return primals_out, tangents_out


def _tangent(out: Tensor, leaves, tans) -> Tensor:
    """``J t`` for one output: row ``k`` of ``J`` from a backward walk seeded with ``e_k``."""
    result = np.zeros(out.data.size, dtype=np.float64)
    if out.requires_grad:
        seed = np.zeros(out.data.size, dtype=out.data.dtype)
        for k in range(out.data.size):
            seed[k] = 1
            rows = gradients(out, leaves, output_gradient=seed.reshape(out.data.shape))
            seed[k] = 0
            result[k] = sum(float(np.sum(r * t)) for r, t in zip(rows, tans))
    dtype = out.data.dtype if np.issubdtype(out.data.dtype, np.floating) else np.float32
    return Tensor(result.reshape(out.data.shape).astype(dtype))


# On KerasTensor primals, jvp records one graph node that replays it on data.
jvp = dispatch_symbolic(jvp)
