"""The optimizer base: owns the update loop; each optimizer implements ``build`` + ``update_step``.

The variables and slots live in flat buffers, one per dtype, and a step's gradients
reach ``update_step`` by a few paths (whole buffers, parts on the pool, per variable):
:mod:`lamina.optimizers.flat_apply`. Clipping and weight decay are in
:mod:`lamina.optimizers.clip_decay`, gradient accumulation and the EMA in
:mod:`lamina.optimizers.accumulation_ema`; :class:`Optimizer` is all of them.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from lamina.optimizers import pieces as pieces_module
from lamina.optimizers import schedules as schedules_module
from lamina.optimizers.accumulation_ema import AccumulationAndEma
from lamina.optimizers.buffers import Segment, Unit, new_variable, variable_class
from lamina.optimizers.clip_decay import ClippingAndDecay
from lamina.optimizers.flat_apply import FlatApply

_OPTIMIZER_COUNTS: dict[str, int] = {}


def _auto_name(class_name: str) -> str:
    # Keras's to_snake_case: "ScheduleFreeAdamW" -> "schedule_free_adam_w".
    base = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))
    base = re.sub("([a-z])([A-Z])", r"\1_\2", base).lower()
    count = _OPTIMIZER_COUNTS.get(base, 0)
    _OPTIMIZER_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Optimizer(FlatApply, ClippingAndDecay, AccumulationAndEma):
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

    def add_variable(self, value, name: str):
        """Track an extra (non-slot) state variable, e.g. Nadam's ``u_product``."""
        var = new_variable(value, name, f"{self.name}/{name}")
        self._variables.append(var)
        return var

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

    def update_step(self, gradient, variable, learning_rate):
        """Update ``variable`` (and slots) in place from ``gradient``; override this."""
        raise NotImplementedError

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
