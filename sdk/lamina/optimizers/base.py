"""The optimizer base: owns the update loop; each optimizer implements ``build`` + ``update_step``.

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

import math
import re
import warnings

import numpy as np

from lamina.backend.parallel import MAX_PARTS, PART_ELEMENTS
from lamina.backend.threads import parallel_for
from lamina.optimizers import kernels
from lamina.optimizers import pieces as pieces_module
from lamina.optimizers import schedules as schedules_module
from lamina.optimizers.buffers import (
    Segment,
    Unit,
    gather,
    new_variable,
    unit_parts,
    variable_class,
)

_FLUSH_THRESHOLD = 1e-20
# update_step implementations that are purely elementwise (no per-call state, no norms):
# run over fixed slices of the flat buffers in parallel, with bit-identical results.
_ELEMENTWISE_STEPS = frozenset({
    ("lamina.optimizers.adam", "Adam.update_step"),
    ("lamina.optimizers.sgd", "SGD.update_step"),
    ("lamina.optimizers.rmsprop", "RMSprop.update_step"),
    ("lamina.optimizers.adagrad", "Adagrad.update_step"),
    ("lamina.optimizers.adamax", "Adamax.update_step"),
    ("lamina.optimizers.lion", "Lion.update_step"),
})
_OPTIMIZER_COUNTS: dict[str, int] = {}


def _auto_name(class_name: str) -> str:
    # Keras's to_snake_case: "ScheduleFreeAdamW" -> "schedule_free_adam_w".
    base = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))
    base = re.sub("([a-z])([A-Z])", r"\1_\2", base).lower()
    count = _OPTIMIZER_COUNTS.get(base, 0)
    _OPTIMIZER_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Optimizer:
    """Base class for optimizers with Keras 3's constructor, variables and semantics.

    Subclasses override ``build`` (calling ``super().build`` and then
    ``add_optimizer_variables``) and ``update_step(gradient, variable, learning_rate)``,
    where ``gradient`` and ``variable`` are ndarrays (usually the whole flat buffers) that
    ``update_step`` must update in place; it reads slots with ``self._slot(name, variable)``
    and may use ``self._scratch(variable, k)`` as temporary storage. It must not write
    into ``gradient``.

    Args:
        learning_rate: float, a ``LearningRateSchedule``, or a zero-argument callable.
        weight_decay: float or None; decoupled decay ``w -= w * weight_decay * lr``.
        clipnorm: float or None; clip each gradient to this L2 norm.
        clipvalue: float or None; clip each gradient element to ``[-v, v]``.
        global_clipnorm: float or None; clip all gradients to this global L2 norm.
        use_ema: keep an exponential moving average ("average" slots) of the variables.
        ema_momentum: the EMA's momentum in [0, 1], default 0.99.
        ema_overwrite_frequency: int or None; every this many updates the variables are
            overwritten by their averages.
        loss_scale_factor: float or None; gradients are divided by it.
        gradient_accumulation_steps: int >= 2 or None; gradients are summed over this
            many ``apply`` calls and their mean applied on the last one.
        name: the optimizer's name (auto-generated from the class name if None).

    Raises:
        ValueError: for unknown arguments, several clipping options at once, or an invalid
            learning rate.
    """

    denormal_flush_interval = 32

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                          stacklevel=2)
        for legacy in ("jit_compile", "is_legacy_optimizer"):
            kwargs.pop(legacy, None)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        if gradient_accumulation_steps and not gradient_accumulation_steps >= 2:
            raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. "
                             f"Received: gradient_accumulation_steps={gradient_accumulation_steps}")
        if use_ema:
            if ema_momentum > 1 or ema_momentum < 0:
                raise ValueError("`ema_momentum` must be in the range [0, 1]. "
                                 f"Received: ema_momentum={ema_momentum}")
            if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int)
                                            or ema_overwrite_frequency < 1):
                raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. "
                                 f"Received: ema_overwrite_frequency={ema_overwrite_frequency}")
        self.name = name if name is not None else _auto_name(self.__class__.__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.built = False
        self._variables: list = []
        self._trainable_variables: list = []
        self._index: dict[int, int] = {}
        self._segments: list[Segment] = []
        self._units: dict[int, Unit] = {}
        self._exclude_ids: set[int] = set()
        self._exclude_pattern = None
        self._pieces = None  # this step's UpdateInPieces (lamina.optimizers.pieces)
        self._slot_bindings: list = []  # (slot Variable, model variable, slot name)
        self._iterations = new_variable(np.array(0, dtype=np.int64), "iteration",
                                         f"{self.name}/iteration")
        self._variables.append(self._iterations)
        self._learning_rate = None
        self._set_learning_rate(learning_rate)

    # -- learning rate and iterations -----------------------------------------------
    def _set_learning_rate(self, learning_rate) -> None:
        current = self._learning_rate
        if isinstance(learning_rate, schedules_module.LearningRateSchedule) or (
                callable(learning_rate) and not isinstance(learning_rate, variable_class())):
            if isinstance(current, variable_class()):
                self._variables.remove(current)
            self._learning_rate = learning_rate
            return
        if isinstance(learning_rate, variable_class()):
            learning_rate = learning_rate.numpy()
        if isinstance(learning_rate, (bool, np.bool_)) or not isinstance(
                learning_rate, (int, float, np.integer, np.floating, np.ndarray)) or (
                np.ndim(learning_rate) != 0):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                f"value and returns the corresponding learning rate value). Received instead: "
                f"learning_rate={learning_rate!r}")
        if isinstance(current, schedules_module.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument.")
        if isinstance(current, variable_class()):
            current.assign(np.float32(learning_rate))
            return
        var = new_variable(np.array(learning_rate, dtype=np.float32), "learning_rate",
                            f"{self.name}/learning_rate")
        self._variables.insert(1, var)
        self._learning_rate = var

    @property
    def learning_rate(self) -> np.float32:
        """The current learning rate as a float32 scalar (settable to a float or schedule)."""
        return np.float32(self._current_learning_rate())

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self._set_learning_rate(value)

    def _current_learning_rate(self) -> float:
        lr = self._learning_rate
        if isinstance(lr, schedules_module.LearningRateSchedule):
            return float(lr(self._step()))
        if isinstance(lr, variable_class()):
            return float(lr.data)
        return float(np.asarray(lr()))

    @property
    def iterations(self):
        """The step counter ``Variable`` (int64), incremented by every ``apply``.

        With ``gradient_accumulation_steps`` it is the number of applied updates
        (``apply`` calls // steps), as in Keras.
        """
        if self.gradient_accumulation_steps:
            return np.int64(self._iterations.data // self.gradient_accumulation_steps)
        return self._iterations

    def _step(self) -> int:
        if self.gradient_accumulation_steps:
            return int(self._iterations.data) // self.gradient_accumulation_steps
        return int(self._iterations.data)

    @property
    def variables(self) -> list:
        """Optimizer state in Keras order: iteration, learning_rate, then slots."""
        return self._variables[:]

    # -- building ---------------------------------------------------------------------
    def build(self, variables) -> None:
        """Pack ``variables`` into flat buffers; subclasses then add their slots.

        Args:
            variables: the list of trainable ``Variable`` objects to optimise.
        """
        variables = list(variables)
        self._trainable_variables = variables
        self._index = {id(v): i for i, v in enumerate(variables)}
        by_dtype: dict[np.dtype, list] = {}
        for var in variables:
            by_dtype.setdefault(var.data.dtype, []).append(var)
        self._segments = [Segment(vs, dtype) for dtype, vs in by_dtype.items()]
        self._units = {}
        self._var_units: dict[int, Unit] = {}
        for seg in self._segments:
            self._index_units(seg)
        self.built = True
        if self.use_ema:
            self._model_variables_moving_average = self.add_optimizer_variables(
                variables, "average")
        if self.gradient_accumulation_steps:
            self._accumulated_gradients = self.add_optimizer_variables(
                variables, "gradient_accumulator")

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

    def add_variable(self, value, name: str):
        """Track an extra (non-slot) state variable, e.g. Nadam's ``u_product``."""
        var = new_variable(value, name, f"{self.name}/{name}")
        self._variables.append(var)
        return var

    def _slot(self, name: str, variable: np.ndarray) -> np.ndarray:
        return self._units[id(variable)].slots[name]

    def _scratch(self, variable: np.ndarray, k: int = 0) -> np.ndarray:
        return self._units[id(variable)].scratch(k)

    # -- applying -----------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Apply ``(gradient, variable)`` pairs; returns the iterations variable."""
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables)
        return self._iterations

    def apply(self, grads, trainable_variables=None) -> None:
        """Update the variables with the gradients (building on the first call).

        Args:
            grads: list of gradient arrays (or Tensors), one per variable; None skips one.
            trainable_variables: the variables; defaults to those the optimizer was built on.

        Raises:
            ValueError: if unbuilt without variables, on unknown variables, on a count
                mismatch, or if every gradient is None.
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must "
                                 "already be built on a list of variables. Call "
                                 "`optimizer.build(trainable_variables)` first.")
            variables = self._trainable_variables
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
            for var in variables:
                if id(var) not in self._index:
                    raise ValueError(f"Unknown variable: {var}. This optimizer can only be "
                                     "called for the variables it was originally built with.")
        if len(grads) != len(variables):
            raise ValueError(f"Received {len(grads)} gradients for {len(variables)} variables.")
        missing = [v.name for g, v in zip(grads, variables) if g is None]
        if len(missing) == len(grads):
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing "
                          "the loss. If using `model.compile()`, did you forget to provide a "
                          "`loss` argument?", stacklevel=2)
        plan, self._pieces = self._pieces, None
        whole = variables is self._trainable_variables or variables == self._trainable_variables
        if plan is not None and plan.started and not whole:
            raise ValueError("This step's update was begun in pieces for the optimizer's "
                             "variables; `apply` must finish it with the same variables.")
        for seg in self._segments:
            seg.resync()
        if plan is not None and whole:
            self._pieces = plan
            try:
                plan.finish(grads)
            finally:
                self._pieces = None
        else:
            lr = self._current_learning_rate()
            if not missing and whole:
                self._apply_flat(grads, lr)
            else:
                self._apply_each(grads, variables, lr)
        interval = self.denormal_flush_interval
        step = self._step()
        if interval and step % interval == interval - 1:
            self._flush_denormals(*(plan.flush_range if plan is not None and whole
                                    else (0, None)))
        for var in variables:
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                var.assign(constraint(var))
        self._iterations.data += 1

    def begin_update_in_pieces(self):
        """Start a step whose update may be applied in pieces (see
        :mod:`lamina.optimizers.pieces`): the returned plan's ``apply(indices, grads)``
        updates some variables at once; the step's :meth:`apply` (on the variables the
        optimizer was built with) updates the rest and ends the step, with the bits of
        one whole ``apply``.

        Returns:
            An ``UpdateInPieces``, or None when this optimizer's step needs all the
            gradients at once (clipping, loss scaling, accumulation, EMA, weight
            decay, several dtypes, or a step that is not elementwise). A plan that was
            begun and not finished is dropped.
        """
        self._pieces = None
        if not pieces_module.supported(self):
            return None
        for seg in self._segments:
            seg.resync()  # the pieces update the buffers' views in place
        self._pieces = pieces_module.UpdateInPieces(self)
        return self._pieces

    def cancel_update_in_pieces(self) -> None:
        """Drop this step's plan (the step ended without ``apply``)."""
        self._pieces = None

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

    def _accumulate(self, grads: list, accs: list) -> bool:
        """Keras's gradient accumulation; True when this call applies an update.

        ``grads`` are updated in place to the mean accumulated gradient on update steps.
        """
        steps = self.gradient_accumulation_steps
        if not steps:
            return True
        if (int(self._iterations.data) + 1) % steps != 0:
            for g, acc in zip(grads, accs):
                acc += g
            return False
        for g, acc in zip(grads, accs):
            g += acc
            g /= steps
            acc[...] = 0
        return True

    def _update_ema(self) -> None:
        """Keras's EMA of the trainable variables, overwriting them every N updates."""
        if not self.use_ema:
            return
        momentum = self.ema_momentum if self._step() != 0 else 0.0
        for seg in self._segments:
            average = seg.slots["average"]
            average *= momentum
            average += (1 - momentum) * seg.param
        freq = self.ema_overwrite_frequency
        if freq and (self._step() + 1) % freq == 0:
            for seg in self._segments:
                np.copyto(seg.param, seg.slots["average"])

    def finalize_variable_values(self, var_list) -> None:
        """With ``use_ema``, replace the variables' values by their moving averages."""
        if self.use_ema:
            for var, average in zip(var_list, self._model_variables_moving_average):
                var.assign(average.numpy())

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

    def _gather_in_parts(self, grads, lr: float) -> bool:
        """The plain case (one segment, an elementwise step, no loss scaling, accumulation
        or clipping): each part copies its slice of the gradients into the flat buffer,
        applies its slice of the weight decay and updates it right away, on the pool.
        False when not applicable."""
        fn = type(self).update_step
        if (len(self._segments) != 1 or self.loss_scale_factor is not None
                or self.gradient_accumulation_steps or self.clipnorm or self.clipvalue
                or self.global_clipnorm
                or type(self)._backend_update_step is not Optimizer._backend_update_step
                or (fn.__module__, fn.__qualname__) not in _ELEMENTWISE_STEPS):
            return False
        seg = self._segments[0]
        parts = self._flat_parts(seg.grad, seg.param)
        if not parts:
            return False
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

    def update_step(self, gradient, variable, learning_rate):
        """Update ``variable`` (and slots) in place from ``gradient``; override this."""
        raise NotImplementedError

    # -- clipping and weight decay --------------------------------------------------------
    def _clip_flat(self) -> None:
        if self.clipnorm and self.clipnorm > 0:
            for seg in self._segments:
                for i in range(len(seg.variables)):
                    part = seg.grad[seg.offsets[i]:seg.offsets[i + 1]]
                    part *= self._clipnorm_scale(part)
        elif self.global_clipnorm and self.global_clipnorm > 0:
            scale = self._global_scale([s.grad for s in self._segments])
            for seg in self._segments:
                seg.grad *= scale
        elif self.clipvalue and self.clipvalue > 0:
            for seg in self._segments:
                np.clip(seg.grad, -self.clipvalue, self.clipvalue, out=seg.grad)

    def _clip_list(self, grads: list) -> list:
        if self.clipnorm and self.clipnorm > 0:
            return [g * self._clipnorm_scale(g.reshape(-1)) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            scale = self._global_scale([g.reshape(-1) for g in grads])
            return [g * scale for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _clipnorm_scale(self, flat: np.ndarray) -> float:
        l2sum = float(np.dot(flat, flat))
        norm = math.sqrt(l2sum) if l2sum > 0 else 0.0
        return self.clipnorm / max(norm, self.clipnorm)

    def _global_scale(self, flats: list) -> float:
        norm = math.sqrt(sum(float(np.dot(f, f)) for f in flats))
        if not math.isfinite(norm):
            return float("nan")
        return self.global_clipnorm * min(1.0 / norm if norm else math.inf,
                                          1.0 / self.global_clipnorm)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Exclude variables (by object, or by substrings of their names) from weight decay.

        Args:
            var_list: variables to exclude.
            var_names: strings; a variable whose name contains any of them is excluded.

        Raises:
            ValueError: if the optimizer is already built.
        """
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the "
                             "optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list or []}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var) -> bool:
        if id(var) in self._exclude_ids:
            return False
        return not (self._exclude_pattern is not None
                    and self._exclude_pattern.search(var.name) is not None)

    def _has_weight_decay(self) -> bool:
        """Whether any variable decays (an optimizer with per-variable rates overrides)."""
        return bool(self.weight_decay)

    def _weight_decay_for(self, var):
        """The decoupled weight-decay rate of ``var`` (``None`` or 0 for none)."""
        return self.weight_decay if self._use_weight_decay(var) else None

    def _decay_segment(self, seg: Segment, lr: float, lo: int = 0, hi: int | None = None,
                       rates: list | None = None) -> None:
        """Decay ``seg.param[lo:hi]``; every element gets the same operations whichever
        range it is decayed in (the parts of ``_gather_in_parts``)."""
        if rates is None:
            rates = [self._weight_decay_for(v) for v in seg.variables]
        hi = seg.param.size if hi is None else hi
        if rates and all(r == rates[0] for r in rates) and rates[0]:
            if not kernels.decay(seg.param[lo:hi], rates[0] * lr):
                scratch = seg.scratch(0)[lo:hi]
                np.multiply(seg.param[lo:hi], rates[0] * lr, out=scratch)
                seg.param[lo:hi] -= scratch
            return
        for rate, start, stop in zip(rates, seg.offsets, seg.offsets[1:]):
            if rate and start < hi and stop > lo:
                view = seg.param[max(start, lo):min(stop, hi)]
                if not kernels.decay(view, rate * lr):
                    view -= view * (rate * lr)

    def _flush_denormals(self, lo: int = 0, hi: int | None = None) -> None:
        """Zero tiny slot values (``[lo, hi)`` of a one-segment optimizer's slots)."""
        for seg in self._segments:
            end = seg.param.size if hi is None else hi
            for slot in seg.slots.values():
                if slot.dtype.kind == "f":
                    scratch = seg.scratch(0)[lo:end]
                    np.abs(slot[lo:end], out=scratch)
                    np.copyto(slot[lo:end], 0, where=scratch < _FLUSH_THRESHOLD)

    # -- state and config -----------------------------------------------------------------
    def set_weights(self, weights) -> None:
        """Assign a list of arrays to ``variables`` (same order and shapes)."""
        if not self.built:
            raise ValueError("You are calling `set_weights()` on an optimizer that has not yet "
                             "been built. Call `optimizer.build(trainable_variables)` first.")
        for var, value in zip(self._variables, weights):
            var.assign(np.asarray(value, dtype=var.data.dtype))

    def get_weights(self) -> list:
        """Return copies of ``variables`` as ndarrays."""
        return [v.numpy() for v in self._variables]

    def save_own_variables(self, store) -> None:
        """Write ``variables`` to ``store["0"]``, ``store["1"]``, ... (Keras layout)."""
        for i, var in enumerate(self._variables):
            store[str(i)] = var.numpy()

    def load_own_variables(self, store) -> None:
        """Read ``variables`` back from a store written by :meth:`save_own_variables`."""
        if len(store.keys()) != len(self._variables):
            warnings.warn(f"Skipping variable loading for optimizer '{self.name}', because it "
                          f"has {len(self._variables)} variables whereas the saved optimizer "
                          f"has {len(store.keys())} variables.", stacklevel=2)
            return
        for i, var in enumerate(self._variables):
            var.assign(np.asarray(store[str(i)], dtype=var.data.dtype))

    def get_config(self) -> dict:
        """Return the constructor arguments (Keras's keys)."""
        lr = self._learning_rate
        if isinstance(lr, schedules_module.LearningRateSchedule):
            learning_rate = schedules_module.serialize(lr)
        elif isinstance(lr, variable_class()):
            learning_rate = float(lr.data)
        else:
            learning_rate = float(np.asarray(lr()))
        return {
            "name": self.name, "learning_rate": learning_rate,
            "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
            "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Create an optimizer from :meth:`get_config` output."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_module.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} name={self.name}>"
