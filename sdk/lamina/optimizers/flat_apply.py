"""The optimizer's flat buffers and the paths a step takes to ``update_step``.

Fast path. At ``build`` the trainable variables are grouped by dtype and each group is
packed into ONE contiguous parameter buffer: every variable's ``.data`` is rebound to a
view of that buffer (values are preserved; this is the only place in Lamina where a
variable's ``.data`` is rebound). Every slot (Adam's ``m`` and ``v``, ...) is likewise one
flat buffer whose per-variable views back the slot ``Variable`` objects that are saved.
A training step then copies the gradients into one flat gradient buffer (a single
``np.concatenate(..., out=)`` pass) and ``update_step`` runs a handful of whole-buffer,
in-place ufunc passes over preallocated scratch: no temporaries, no per-variable loops.

If something rebinds a variable's ``.data`` later (it should use ``assign``, which copies),
the next step notices (an identity check per variable), copies the new value into the
buffer and restores the view, so updates are never lost.

Steps that do not cover every variable (a ``None`` gradient, a subset of variables) run
``update_step`` per variable on the same views, with Keras's semantics (skipped variables
keep their slots untouched).

Denormals. A slot that decays geometrically towards zero (Adam's ``m`` under dead ReLU
units) becomes float32-denormal after a few hundred steps, and arithmetic on denormals is
2-100x slower. Every ``denormal_flush_interval`` steps (class attribute, default 32; 0
disables) slot entries with ``|x| < 1e-20`` are set to exactly 0. Values that small cannot
move a float32 weight, so the update is unchanged for all practical purposes; between two
flushes a value decays by at most ``0.5**32``, so it stays a normal float (> 1.2e-38).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.parallel import MAX_PARTS, PART_ELEMENTS
from lamina.backend.threads import parallel_for
from lamina.optimizers.buffers import Segment, Unit, gather, new_variable, unit_parts

_FLUSH_THRESHOLD = 1e-20
# update_step implementations that are purely elementwise (no per-call state, no norms):
# run over fixed slices of the flat buffers in parallel, with bit-identical results.
# They only read their gradient: UpdateInPieces.apply_pieces hands them slices of the
# replicas' shared exchange result, not of the optimizer's own buffer.
_ELEMENTWISE_STEPS = frozenset({
    ("lamina.optimizers.adam", "Adam.update_step"),
    ("lamina.optimizers.sgd", "SGD.update_step"),
    ("lamina.optimizers.rmsprop", "RMSprop.update_step"),
    ("lamina.optimizers.adagrad", "Adagrad.update_step"),
    ("lamina.optimizers.adamax", "Adamax.update_step"),
    ("lamina.optimizers.lion", "Lion.update_step"),
})


class FlatApply:
    """:class:`~lamina.optimizers.base.Optimizer`'s flat buffers, slots and apply paths
    (a mixin: the state it uses is set up by ``Optimizer.__init__`` and ``build``)."""

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """Create slot variables (flat-buffer backed), interleaved per model variable.

        Args:
            trainable_variables: the variables passed to ``build``.
            name: a slot name, or a list of names created in turn for each variable.
            initializer: ``"zeros"`` or a float fill value (one, or one per name).

        Returns:
            A list of slot ``Variable`` objects, or a tuple of lists for a list of names.
        """
        names = [name] if isinstance(name, str) else list(name)
        inits = initializer if isinstance(initializer, (list, tuple)) else [initializer] * len(
            names)
        fills = [0.0 if init in (None, "zeros") else float(getattr(init, "value", init))
                 for init in inits]
        for slot, fill in zip(names, fills):
            for seg in self._segments:
                seg.slots[slot] = np.full(seg.param.size, fill, dtype=seg.dtype)
                self._units[id(seg.param)].slots[slot] = seg.slots[slot]
        out = tuple([] for _ in names)
        for var in trainable_variables:
            unit = self._var_units[id(var)]
            for k, slot in enumerate(names):
                view = unit.segment.slots[slot][unit.start:unit.stop].reshape(unit.shape)
                unit.slots[slot] = view
                short = f"{getattr(var, 'path', var.name).replace('/', '_')}_{slot}"
                slot_var = new_variable(np.zeros((), dtype=view.dtype), short,
                                         f"{self.name}/{short}")
                slot_var.data = view
                self._slot_bindings.append((slot_var, var, slot))
                self._variables.append(slot_var)
                out[k].append(slot_var)
        return out[0] if isinstance(name, str) else out

    def _index_units(self, seg: Segment) -> None:
        """Index ``seg``'s whole buffer and each variable's view as update units, with
        views of the slots ``seg`` has so far."""
        whole = Unit(seg, 0, seg.param.size, seg.param.shape)
        whole.slots = dict(seg.slots)
        self._units[id(seg.param)] = whole
        for i, view in enumerate(seg.views):
            unit = Unit(seg, seg.offsets[i], seg.offsets[i + 1], view.shape)
            unit.slots = {name: slot[unit.start:unit.stop].reshape(unit.shape)
                          for name, slot in seg.slots.items()}
            self._units[id(view)] = unit
            self._var_units[id(seg.variables[i])] = unit

    def relocate(self, param: np.ndarray, slots: dict) -> None:
        """Move the (one) flat parameter buffer and its slots into ``param`` and
        ``slots[name]`` (e.g. memory that replicas share), keeping every variable and
        slot variable (their ``.data`` become views of the new buffers).

        Raises:
            ValueError: unless the optimizer is built with one segment and ``slots``
                names exactly its slots.
        """
        if not self.built or len(self._segments) != 1:
            raise ValueError("relocate needs a built optimizer with one dtype segment")
        seg = self._segments[0]
        if set(slots) != set(seg.slots):
            raise ValueError(f"slots must be {sorted(seg.slots)}. Received: {sorted(slots)}")
        seg.relocate(param, slots)
        self._units, self._var_units = {}, {}
        self._index_units(seg)
        for slot_var, var, name in self._slot_bindings:
            slot_var.data = self._var_units[id(var)].slots[name]
        self.__dict__.pop("_parts_cache", None)
        self._pieces = None

    def _slot(self, name: str, variable: np.ndarray) -> np.ndarray:
        return self._units[id(variable)].slots[name]

    def _scratch(self, variable: np.ndarray, k: int = 0) -> np.ndarray:
        return self._units[id(variable)].scratch(k)

    def _apply_flat(self, grads, lr: float) -> None:
        if self._gather_in_parts(grads, lr):
            self._update_ema()
            return
        start = 0
        for seg in self._segments:
            count = len(seg.variables)
            if len(self._segments) == 1:
                parts = [np.asarray(g).reshape(-1) for g in grads]
            else:
                parts = [np.asarray(grads[self._index[id(v)]]).reshape(-1) for v in seg.variables]
            np.concatenate(parts, out=seg.grad)
            start += count
        if self.loss_scale_factor is not None:
            for seg in self._segments:
                seg.grad /= self.loss_scale_factor
        if self._accumulate([s.grad for s in self._segments],
                            [s.slots.get("gradient_accumulator") for s in self._segments]):
            self._clip_flat()
            if self._has_weight_decay():
                for seg in self._segments:
                    self._decay_segment(seg, lr)
            self._backend_update_step([s.grad for s in self._segments],
                                      [s.param for s in self._segments], lr)
        self._update_ema()

    def _apply_each(self, grads, variables, lr: float) -> None:
        pairs = [(np.asarray(g, dtype=v.data.dtype).reshape(v.data.shape), v)
                 for g, v in zip(grads, variables) if g is not None]
        gs = [g for g, _ in pairs]
        if self.loss_scale_factor is not None:
            gs = [g / self.loss_scale_factor for g in gs]
        accs = [self._var_units[id(v)].slots.get("gradient_accumulator") for _, v in pairs]
        if self._accumulate(gs, accs):
            gs = self._clip_list(gs)
            if self._has_weight_decay():
                for _, var in pairs:
                    decay = self._weight_decay_for(var)
                    if decay:
                        var.data -= var.data * (decay * lr)
            self._backend_update_step(gs, [v.data for _, v in pairs], lr)
        self._update_ema()

    def _backend_update_step(self, grads, variables, learning_rate: float) -> None:
        fn = type(self).update_step
        if (fn.__module__, fn.__qualname__) in _ELEMENTWISE_STEPS:
            for grad, var in zip(grads, variables):
                parts = self._flat_parts(grad, var)
                if parts:
                    parallel_for(len(parts), lambda i, p=parts: self.update_step(
                        p[i][0], p[i][1], learning_rate))
                    continue
                self.update_step(grad, var, learning_rate)
            return
        for grad, var in zip(grads, variables):
            self.update_step(grad, var, learning_rate)

    def _gather_parts(self):
        """The parts of the gather-in-parts path, or None when it does not apply (the
        plain case: one segment, an elementwise step, no loss scaling, accumulation or
        clipping, a buffer large enough to cut)."""
        fn = type(self).update_step
        if (len(self._segments) != 1 or self.loss_scale_factor is not None
                or self.gradient_accumulation_steps or self.clipnorm or self.clipvalue
                or self.global_clipnorm
                or type(self)._backend_update_step is not FlatApply._backend_update_step
                or (fn.__module__, fn.__qualname__) not in _ELEMENTWISE_STEPS):
            return None
        seg = self._segments[0]
        return self._flat_parts(seg.grad, seg.param) or None

    def gradient_views(self, variables) -> list:
        """``(variable, view)`` pairs for ``autodiff.gradient_destinations``: where the
        gradients of ``variables`` (the optimizer's own, in order) go in the flat
        gradient buffer, so that backward may write them there and the next
        :meth:`apply` copies nothing; ``[]`` unless that apply takes the
        gather-in-parts path (the bits do not depend on where a gradient was written).
        """
        if not self.built or self._gather_parts() is None:
            return []
        seg = self._segments[0]
        if len(variables) != len(seg.variables) or any(
                a is not b for a, b in zip(variables, seg.variables)):
            return []
        cached = seg.__dict__.get("grad_views")
        if cached is None or cached[0] is not seg.grad:
            pairs = [(var, seg.grad[seg.offsets[i]:seg.offsets[i + 1]].reshape(view.shape))
                     for i, (var, view) in enumerate(zip(seg.variables, seg.views))]
            cached = seg.grad_views = (seg.grad, pairs)
        return cached[1]

    def _gather_in_parts(self, grads, lr: float) -> bool:
        """The plain case (:meth:`_gather_parts`): each part copies its slice of the
        gradients into the flat buffer (unless backward wrote it there:
        :meth:`gradient_views`), applies its slice of the weight decay and updates it
        right away, on the pool. False when not applicable."""
        parts = self._gather_parts()
        if parts is None:
            return False
        seg = self._segments[0]
        pieces = [np.asarray(g).reshape(-1) for g in grads]
        bounds = [(self._units[id(view)].start, self._units[id(view)].stop) for _, view in parts]
        rates = [self._weight_decay_for(v) for v in seg.variables] if (
            self._has_weight_decay()) else None

        def part(i):
            gather(pieces, seg.offsets, seg.grad, *bounds[i])
            if rates is not None:
                self._decay_segment(seg, lr, *bounds[i], rates=rates)
            self.update_step(parts[i][0], parts[i][1], lr)

        parallel_for(len(parts), part)
        return True

    def _flat_parts(self, grad, param):
        """Fixed ``(gradient, parameter)`` slices of a whole flat buffer, each with its own
        unit (slot and scratch slices), for an elementwise ``update_step`` run in parts."""
        unit = self._units.get(id(param))
        if unit is None or unit.start != 0 or param.ndim != 1 or grad.shape != param.shape:
            return None
        seg = unit.segment
        if param is not seg.param or grad is not seg.grad:
            return None
        key = (param.size, tuple(seg.slots))
        cached = getattr(self, "_parts_cache", {}).get(id(seg))
        if cached is not None and cached[0] == key:
            return cached[1]
        count = min(MAX_PARTS, param.size // PART_ELEMENTS)
        parts = unit_parts(seg, self._units, 0, param.size, count) if count >= 2 else []
        if not hasattr(self, "_parts_cache"):
            self._parts_cache = {}
        self._parts_cache[id(seg)] = (key, parts)
        return parts

    def _flush_denormals(self, lo: int = 0, hi: int | None = None) -> None:
        """Zero tiny slot values (``[lo, hi)`` of a one-segment optimizer's slots)."""
        for seg in self._segments:
            end = seg.param.size if hi is None else hi
            for slot in seg.slots.values():
                if slot.dtype.kind == "f":
                    scratch = seg.scratch(0)[lo:end]
                    np.abs(slot[lo:end], out=scratch)
                    np.copyto(slot[lo:end], 0, where=scratch < _FLUSH_THRESHOLD)
