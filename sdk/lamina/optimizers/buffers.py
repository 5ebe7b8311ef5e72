"""Flat buffers behind the optimizer fast path (see ``lamina.optimizers.base``).

A ``Segment`` packs same-dtype variables into one parameter buffer (rebinding each
variable's ``.data`` to its view), plus one gradient buffer, slot buffers and scratch.
A ``Unit`` is what ``update_step`` receives: a whole segment or one variable's view.
"""

from __future__ import annotations

import bisect

import numpy as np

from lamina.backend.threads import split


def variable_class():
    from lamina.backend import Variable

    return Variable


def new_variable(value, name: str, path: str):
    var = variable_class()(value, trainable=False, name=name)
    var.path = path
    return var


class Unit:
    """Where one update_step target lives: a whole flat buffer or one variable's view."""

    __slots__ = ("segment", "start", "stop", "shape", "slots")

    def __init__(self, segment, start, stop, shape):
        self.segment, self.start, self.stop, self.shape = segment, start, stop, shape
        self.slots: dict[str, np.ndarray] = {}

    def scratch(self, k: int) -> np.ndarray:
        flat = self.segment.scratch(k)
        if self.start == 0 and self.stop == flat.size and self.shape == flat.shape:
            return flat
        return flat[self.start:self.stop].reshape(self.shape)


class Segment:
    """One dtype's packed parameters, gradients, slots and scratch buffers."""

    def __init__(self, variables, dtype):
        self.variables = list(variables)
        self.dtype = dtype
        sizes = [v.data.size for v in self.variables]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        total = self.offsets[-1]
        self.param = np.empty(total, dtype=dtype)
        self.grad = np.empty(total, dtype=dtype)
        self._scratch: list[np.ndarray] = []
        self.slots: dict[str, np.ndarray] = {}
        self.views = []
        for i, var in enumerate(self.variables):
            view = self.param[self.offsets[i]:self.offsets[i + 1]].reshape(var.data.shape)
            view[...] = var.data
            var.data = view
            self.views.append(view)

    def scratch(self, k: int) -> np.ndarray:
        while len(self._scratch) <= k:
            self._scratch.append(np.empty_like(self.param))
        return self._scratch[k]

    def relocate(self, param: np.ndarray, slots: dict) -> None:
        """Move the parameters and the slots into ``param`` and ``slots[name]`` (flat
        arrays of this segment's size and dtype, e.g. shared memory): values are
        copied and every variable's ``.data`` is rebound to a view of the new buffer.
        The caller rebinds the optimizer's units and slot variables."""
        np.copyto(param, self.param)
        for name, buffer in slots.items():
            np.copyto(buffer, self.slots[name])
        self.param, self.slots = param, dict(slots)
        self.views = []
        for i, var in enumerate(self.variables):
            view = param[self.offsets[i]:self.offsets[i + 1]].reshape(var.data.shape)
            var.data = view
            self.views.append(view)
        self.__dict__.pop("range_parts", None)  # lamina.optimizers.pieces' cache

    def resync(self) -> None:
        for var, view in zip(self.variables, self.views):
            if var.data is not view:
                view[...] = var.data
                var.data = view


def unit_parts(seg: Segment, units: dict, lo: int, hi: int, count: int) -> list:
    """``count`` fixed ``(gradient, parameter)`` slices covering ``[lo, hi)`` of ``seg``'s
    flat buffers, for an elementwise ``update_step`` run in parts: each parameter view
    gets its own unit (slot and scratch slices) in ``units``, keyed by its id."""
    parts = []
    for a, b in split(hi - lo, count):
        view = seg.param[lo + a:lo + b]
        unit = Unit(seg, lo + a, lo + b, view.shape)
        unit.slots = {name: slot[lo + a:lo + b] for name, slot in seg.slots.items()}
        units[id(view)] = unit
        parts.append((seg.grad[lo + a:lo + b], view))
    return parts


def gather(pieces, offsets, out: np.ndarray, lo: int, hi: int) -> None:
    """Copy ``out[lo:hi]`` of the concatenation of the flat ``pieces`` (piece ``j``
    starts at ``offsets[j]``): ``np.concatenate(pieces, out=out)``, one range of it."""
    j = bisect.bisect_right(offsets, lo) - 1  # offsets: a sorted list of ints
    while lo < hi:
        start, stop = offsets[j], offsets[j + 1]
        end = min(hi, stop)
        source = pieces[j][lo - start:end - start]
        target = out[lo:end]
        # (a piece backward wrote into ``out`` itself: autodiff.gradient_destinations)
        if source.__array_interface__["data"][0] != target.__array_interface__["data"][0]:
            np.copyto(target, source)
        lo, j = end, j + 1
