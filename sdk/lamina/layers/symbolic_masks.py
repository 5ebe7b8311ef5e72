"""Masks on symbolic tensors: ``x._keras_mask`` in a functional graph, as in Keras.

A layer that produces or passes on a mask (``Embedding(mask_zero=True)``, ``Masking``,
a layer with ``supports_masking``) gives its symbolic outputs a boolean ``KerasTensor``
as ``_keras_mask``; the next layer's shape inference then runs on dummy tensors that
carry a mask, so a ``call(inputs, mask=None)`` sees one, as it does in Keras. The
shapes come from running ``compute_mask`` on dummy data with unknown sizes set to 1
and then 2 (sizes that differ are unknown), as output shapes are inferred.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.tensor import Tensor
from lamina.tree import flatten, map_structure


def has_symbolic_mask(structure) -> bool:
    """Whether any KerasTensor in ``structure`` carries a ``_keras_mask``."""
    return any(getattr(t, "_keras_mask", None) is not None for t in flatten(structure)
               if isinstance(t, KerasTensor))


def dummy_tensor(t, fill):
    """Zeros standing for KerasTensor ``t`` (unknown sizes -> ``fill``), with an all-True
    mask when ``t`` has a symbolic mask; anything else is returned unchanged."""
    if not isinstance(t, KerasTensor):
        return t
    dtype = object if t.dtype == "string" else t.dtype
    x = Tensor(np.zeros(tuple(fill if d is None else d for d in t.shape), dtype=dtype))
    mask = getattr(t, "_keras_mask", None)
    if isinstance(mask, KerasTensor):
        x._keras_mask = np.ones(tuple(fill if d is None else d for d in mask.shape), bool)
    return x


def attach_symbolic_masks(layer, inputs, outputs) -> None:
    """Set ``_keras_mask`` on ``outputs`` to what ``layer.compute_mask`` gives for
    ``inputs`` (and their masks), as symbolic boolean tensors."""
    from lamina.backend.autodiff import no_grad
    from lamina.backend.scopes import SymbolicScope

    outs = [o for o in flatten(outputs)]

    def run(fill):
        dummies = map_structure(lambda t: dummy_tensor(t, fill), inputs)
        masks = [getattr(t, "_keras_mask", None) for t in flatten(dummies)]
        mask = masks[0] if len(masks) == 1 else (
            masks if any(m is not None for m in masks) else None)
        with no_grad(), np.errstate(all="ignore"), SymbolicScope():
            result = layer.compute_mask(dummies, mask)
        if isinstance(result, (list, tuple)):
            result = list(result)
        else:
            result = [result] * len(outs)
        return [None if m is None else np.shape(getattr(m, "data", m)) for m in result]

    first = run(1)
    if all(s is None for s in first):
        return
    unknown = any(d is None for t in flatten(inputs) if isinstance(t, KerasTensor)
                  for d in t.shape[1:])
    second = run(2) if unknown else [None] * len(first)
    for out, a, b in zip(outs, first, second):
        if a is None or not isinstance(out, KerasTensor):
            continue
        dims = [None] + [None if b is not None and len(b) == len(a) and b[i] != d else d
                         for i, d in enumerate(a[1:], start=1)]
        out._keras_mask = KerasTensor(tuple(dims), dtype="bool")
