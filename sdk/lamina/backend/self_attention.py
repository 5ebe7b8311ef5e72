"""Self-attention with its input projection in one node, batch part by batch part.

:func:`projected_self_attention` is ``packed_attention(x @ kernel + bias)``: the query,
key and value projections (one concatenated kernel) and the fused attention of
:mod:`lamina.backend.attention`. As two nodes, the projection's GEMM writes the whole
``(batch, length, heads * (2 key_dim + value_dim))`` array before the attention reads it
back, and each node is one hand-off to the pool. Here each attention part (a group of
batch rows, :func:`lamina.backend.attention._parts`) projects its own rows and attends
over them while they are in cache; the backward does the attention backward of a part
and then that part's share of the projection's gradients::

    dx[rows] = dqkv[rows] @ kernel^T
    dK_i = x[rows]^T @ dqkv[rows]       db_i = 1^T dqkv[rows]

with ``dK = dK_0 + dK_1 + ...`` (and ``db``) added in part order. With an output kernel
the output projection (MultiHeadAttention's ``attention_output``) runs in the same parts
too: ``y[rows] = context[rows] @ Wo + bo`` after the attention, and its gradients before
the attention's backward. The parts depend only on the shapes, so the bits do not depend
on the thread count or the load.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import gemm
from lamina.backend.attention import _check, _Core, _parts
from lamina.backend.autodiff import Function
from lamina.backend.parallel import parallel_for, sum_in_order


def whole_rows(batch, length, num_heads, itemsize) -> bool:
    """True when every attention part of these shapes is a group of whole batch rows
    (the projection can then be cut with them); long sequences cut one row's heads."""
    return all(heads == slice(None)
               for _, heads in _parts(batch, num_heads, length, length, itemsize))


def _split(qkv, heads, key_dim, value_dim):
    lead = qkv.shape[:2]
    return (qkv[..., :heads * key_dim].reshape(*lead, heads, key_dim),
            qkv[..., heads * key_dim:2 * heads * key_dim].reshape(*lead, heads, key_dim),
            qkv[..., 2 * heads * key_dim:].reshape(*lead, heads, value_dim))


class ProjectedSelfAttention(Function):
    """``packed_attention(x @ kernel + bias)`` in one node, optionally followed by the output
    projection ``@ output_kernel + output_bias`` (see the module docstring)."""

    __slots__ = ("core", "x", "kernel", "has_bias", "sizes", "output_kernel", "has_out_bias",
                 "x_ones")

    def forward(self, x, kernel, bias=None, output_kernel=None, output_bias=None, num_heads=1,
                key_dim=1, value_dim=None, mask=None, scale=None, dropout_mask=None):
        value_dim = key_dim if value_dim is None else value_dim
        width = num_heads * (2 * key_dim + value_dim)
        inner = num_heads * value_dim
        if x.ndim != 3 or kernel.shape != (x.shape[-1], width) or (
                bias is not None and bias.shape != (width,)) or (
                output_kernel is not None and (output_kernel.ndim != 2
                                               or output_kernel.shape[0] != inner)) or (
                output_bias is not None and (output_kernel is None or output_bias.shape
                                             != output_kernel.shape[1:])):
            raise ValueError(
                f"projected_self_attention expects x (batch, length, dim), kernel (dim, "
                f"{width}), bias ({width},), output_kernel ({inner}, out) and output_bias "
                f"(out,) for num_heads={num_heads}, key_dim={key_dim}, value_dim={value_dim}. "
                f"Received: x.shape={x.shape}, kernel.shape={kernel.shape}, "
                f"bias.shape={_shape(bias)}, output_kernel.shape={_shape(output_kernel)}, "
                f"output_bias.shape={_shape(output_bias)}")
        b, t, f = x.shape
        dtype = np.result_type(x.dtype, kernel.dtype)
        if not whole_rows(b, t, num_heads, np.dtype(dtype).itemsize):
            raise ValueError("projected_self_attention: the sequences are too long for parts "
                             f"of whole batch rows. Received: x.shape={x.shape}, "
                             f"num_heads={num_heads}")
        self.x, self.kernel, self.has_bias = x, kernel, bias is not None
        self.output_kernel, self.has_out_bias = output_kernel, output_bias is not None
        self.sizes = (num_heads, key_dim, value_dim)
        qkv = np.empty((b, t, width), dtype)
        q, k, v = _split(qkv, *self.sizes)
        _check(q, k, v)
        self.core = core = _Core()
        offsets = (0, num_heads * key_dim, 2 * num_heads * key_dim)
        core.setup(q, k, v, mask, scale, dropout_mask, packed=(qkv, offsets))
        context = np.empty((b, t, num_heads, value_dim), dtype)
        core.start_forward(context)
        out = context if output_kernel is None else np.empty(
            (b, t, output_kernel.shape[1]), dtype)
        # The bias rides in the GEMM as one more row of the kernel against a column of
        # ones (no pass over the projections; its gradient comes out of the kernel's).
        with_bias = kernel if bias is None else np.concatenate([kernel, bias[None]])
        self.x_ones = [None] * len(core.parts)

        def part(i):
            rows = core.parts[i][0]
            projected = qkv[rows].reshape(-1, width)
            x_rows = x[rows].reshape(-1, f)
            if bias is not None:
                x_rows = self.x_ones[i] = np.concatenate(
                    [x_rows, np.ones((x_rows.shape[0], 1), dtype)], axis=1)
            gemm.matmul_into(x_rows, with_bias, projected)
            core.forward_part(i)
            if output_kernel is not None:
                y = out[rows].reshape(-1, output_kernel.shape[1])
                gemm.matmul_into(context[rows].reshape(-1, inner), output_kernel, y)
                if output_bias is not None:
                    y += output_bias

        parallel_for(len(core.parts), part)
        return out

    def backward(self, g):
        core, x, kernel, wo = self.core, self.x, self.kernel, self.output_kernel
        f, width = kernel.shape
        context = core.out
        dtype = context.dtype
        dqkv = np.empty((*x.shape[:2], width), dtype)
        dq, dk, dv = _split(dqkv, *self.sizes)
        n = len(core.parts)
        need_x, need_k, need_b, need_wo, need_bo = self.needs
        need_b = need_b and self.has_bias
        need_bo = need_bo and self.has_out_bias
        gx = np.empty(x.shape, dtype) if need_x else None
        # With a bias, each part's kernel partial has the bias's as its last row. The
        # partials are computed transposed, dqkv^T @ x: ~10% faster than x^T @ dqkv.
        gkb = np.empty((n, width, f + self.has_bias), dtype) if need_k or need_b else None
        gwo = np.empty((n, *wo.shape), dtype) if need_wo else None
        gbo = np.empty((n, wo.shape[1]), dtype) if need_bo else None
        dcontext = g if wo is None else np.empty(context.shape, dtype)
        dcontext_rows = core.gradient_rows(dcontext)  # (a view of dcontext if contiguous)
        h, key_dim, _ = self.sizes
        packed = (dqkv, (0, h * key_dim, 2 * h * key_dim))
        ones = np.ones(x.shape[0] * x.shape[1], dtype)

        def part(i):
            rows = core.parts[i][0]
            if wo is not None:
                g_rows = g[rows].reshape(-1, wo.shape[1])
                c_rows = context[rows].reshape(-1, wo.shape[0])
                if need_wo:
                    gemm.matmul_into(c_rows.T, g_rows, gwo[i])
                if need_bo:
                    np.matmul(ones[:g_rows.shape[0]], g_rows, out=gbo[i])
                gemm.matmul_into(g_rows, wo.T, dcontext[rows].reshape(-1, wo.shape[0]))
            core.backward_part(i, dcontext_rows, dq, dk, dv, packed)
            grad = dqkv[rows].reshape(-1, width)
            if gkb is not None:
                x_rows = self.x_ones[i] if self.has_bias else x[rows].reshape(-1, f)
                gemm.matmul_into(grad.T, x_rows, gkb[i])
            if need_x:
                gemm.matmul_into(grad, kernel.T, gx[rows].reshape(-1, f))

        parallel_for(n, part)
        kb = None if gkb is None else sum_in_order(gkb).T
        gk = np.ascontiguousarray(kb[:f]) if need_k else None
        gb = kb[f].copy() if need_b else None
        return (gx, gk, gb, *(None if p is None else sum_in_order(p) for p in (gwo, gbo)))


def _shape(a):
    return None if a is None else a.shape


def projected_self_attention(x, kernel, bias=None, num_heads=1, key_dim=1, value_dim=None,
                             mask=None, scale=None, dropout_mask=None, output_kernel=None,
                             output_bias=None):
    """Fused ``packed_attention(x @ kernel + bias, ...)`` (self-attention), optionally
    followed by the output projection.

    Args:
        x: Tensor ``(batch, length, dim)``.
        kernel: Tensor ``(dim, num_heads * (2 * key_dim + value_dim))``: the query, key
            and value kernels side by side.
        bias: optional Tensor of the kernel's last dimension.
        num_heads, key_dim, value_dim: the head layout (``value_dim`` = ``key_dim`` by
            default).
        mask, scale, dropout_mask: as in :func:`lamina.backend.attention.attention`.
        output_kernel: optional Tensor ``(num_heads * value_dim, out)``: the attention's
            context, flattened per position, is multiplied by it.
        output_bias: optional Tensor ``(out,)`` added then (only with ``output_kernel``).

    Returns:
        Tensor ``(batch, length, num_heads, value_dim)``, or ``(batch, length, out)`` with
        an output kernel.

    Raises:
        ValueError: for shapes that do not agree, or sequences so long that the attention
            parts are not whole batch rows (see :func:`whole_rows`).
    """
    return ProjectedSelfAttention.apply(x, kernel, bias, output_kernel, output_bias,
                                        num_heads=num_heads, key_dim=key_dim,
                                        value_dim=value_dim, mask=mask, scale=scale,
                                        dropout_mask=dropout_mask)
