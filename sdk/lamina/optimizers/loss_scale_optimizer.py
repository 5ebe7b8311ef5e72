"""``LossScaleOptimizer``: dynamic loss scaling around an inner optimizer (Keras's rule)."""

from __future__ import annotations

import numpy as np

from lamina.optimizers.base import Optimizer

_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                  "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                  "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None}


class LossScaleOptimizer(Optimizer):
    """Divide gradients by a dynamic scale; skip steps with non-finite gradients.

    Finite gradients are unscaled and applied by ``inner_optimizer``; after
    ``dynamic_growth_steps`` finite steps in a row the scale doubles. A non-finite step is
    skipped, the scale halves and the counter resets. ``scale_loss(loss)`` multiplies a loss
    by the current scale.

    Args:
        inner_optimizer: the ``Optimizer`` that applies the updates.
        initial_scale: float, default ``2**15``.
        dynamic_growth_steps: int, default 2000.
        name: the optimizer's name.

    Raises:
        ValueError: for ``dynamic=False`` or any base optimizer argument (they belong on
            the inner optimizer).
    """

    def __init__(self, inner_optimizer, initial_scale=2.0**15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, "
                             "simply set `loss_scale_factor` directly on the `inner_optimizer`.")
        for arg, default in _BASE_DEFAULTS.items():
            if arg in kwargs and kwargs.pop(arg) != default:
                raise ValueError(f"LossScaleOptimizer does not support `{arg}`. "
                                 f"Instead, set `{arg}` on the `inner_optimizer`.")
        if kwargs:
            raise ValueError("LossScaleOptimizer does not support arguments: "
                             f"`{'`, `'.join(kwargs)}`.")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale = initial_scale
        self.dynamic_growth_steps = dynamic_growth_steps
        self.inner_optimizer.loss_scale_factor = None

    def build(self, var_list):
        """Create ``step_counter`` and ``dynamic_scale``, then build the inner optimizer."""
        if self.built:
            return
        self.step_counter = self.add_variable(np.array(0, np.int64), "step_counter")
        self.dynamic_scale = self.add_variable(np.array(self.initial_scale, np.float32),
                                               "dynamic_scale")
        self.inner_optimizer.build(var_list)
        self._trainable_variables = list(var_list)
        self.built = True

    @property
    def variables(self) -> list:
        return self._variables[:] + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None) -> None:
        """Apply unscaled finite gradients through the inner optimizer, or skip and halve."""
        grads = list(grads)
        if not self.built:
            self.build(trainable_variables)
        present = [np.asarray(g) for g in grads if g is not None]
        if all(np.all(np.isfinite(g)) for g in present):
            scale = np.float32(self.dynamic_scale.data)
            self.inner_optimizer.apply([None if g is None else np.asarray(g) / scale
                                        for g in grads], trainable_variables)
            if int(self.step_counter.data) == self.dynamic_growth_steps - 1:
                self.step_counter.assign(np.array(0, np.int64))
                self.dynamic_scale.assign(np.array(scale * 2, np.float32))
            else:
                self.step_counter.assign(np.array(int(self.step_counter.data) + 1, np.int64))
        else:
            self.step_counter.assign(np.array(0, np.int64))
            self.dynamic_scale.assign(np.array(self.dynamic_scale.data * 0.5, np.float32))

    def scale_loss(self, loss):
        """Multiply ``loss`` by the current scale."""
        scale = float(self.dynamic_scale.data) if self.built else self.initial_scale
        return loss * scale

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = value
        else:
            self._set_learning_rate(value)

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        from lamina.optimizers import serialize
        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina.optimizers import deserialize
        config = dict(config)
        config["inner_optimizer"] = deserialize(config["inner_optimizer"], custom_objects)
        return cls(**config)
