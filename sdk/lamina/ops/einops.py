"""``rearrange``: einops-style reshape/transpose, as Keras's ``ops.rearrange`` (its module is
``keras.src.ops.einops`` too)."""

from __future__ import annotations

import re

import numpy as np

from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor
from lamina.ops.manipulation import reshape, transpose

__all__ = ["rearrange"]

_TOKEN = re.compile(r"\(([^()]*)\)|(\w+)")


def _groups(side: str) -> list:
    """``"b (h w) c"`` -> ``[["b"], ["h", "w"], ["c"]]``."""
    groups, end = [], 0
    for match in _TOKEN.finditer(side):
        if side[end:match.start()].strip():
            raise ValueError(f"Unsupported token in rearrange pattern: {side!r}")
        groups.append(match.group(1).split() if match.group(1) is not None
                      else [match.group(2)])
        end = match.end()
    if side[end:].strip():
        raise ValueError(f"Unsupported token in rearrange pattern: {side!r}")
    return groups


def rearrange(tensor, pattern, **axes_lengths):
    """Reorder, split and merge axes as an einops pattern says.

    Args:
        tensor: the input.
        pattern: ``"in -> out"``, each side axis names separated by spaces, with
            ``(a b)`` for a merged axis, e.g. ``"b h w c -> b (h w) c"``.
        **axes_lengths: sizes of axes split on the input side (one per group may be
            inferred).

    Returns:
        The rearranged Tensor (a reshape and a transpose, so differentiable).

    Raises:
        ValueError: when the pattern does not match the input or names differ.
    """
    tensor = convert_to_tensor(tensor)
    if "->" not in pattern:
        raise ValueError(f"`pattern` must contain '->'. Received: pattern={pattern!r}")
    left, right = (s.strip() for s in pattern.split("->", 1))
    ins, outs = _groups(left), _groups(right)
    in_shape = shape(tensor)
    if len(ins) != len(in_shape):
        raise ValueError(f"The pattern's input side has {len(ins)} axes but the tensor has "
                         f"{len(in_shape)}. Received: pattern={pattern!r}, "
                         f"tensor.shape={in_shape}")
    sizes = {}
    for group, dim in zip(ins, in_shape):
        unknown = [a for a in group if a not in axes_lengths]
        known = int(np.prod([axes_lengths[a] for a in group if a in axes_lengths]))
        if len(group) == 1 and not unknown:
            sizes[group[0]] = int(axes_lengths[group[0]])
            continue
        if len(unknown) > 1:
            raise ValueError(f"Cannot infer the sizes of {unknown} in {pattern!r}: pass "
                             "all but one of them as keyword arguments.")
        for a in group:
            sizes[a] = int(axes_lengths[a]) if a in axes_lengths else dim // known
    flat_in = [a for g in ins for a in g]
    flat_out = [a for g in outs for a in g]
    if sorted(flat_in) != sorted(flat_out):
        raise ValueError(f"Both sides of the pattern must name the same axes. Received: "
                         f"pattern={pattern!r}")
    x = reshape(tensor, tuple(sizes[a] for a in flat_in))
    x = transpose(x, tuple(flat_in.index(a) for a in flat_out))
    return reshape(x, tuple(int(np.prod([sizes[a] for a in g])) for g in outs))


export(globals(), __all__)
