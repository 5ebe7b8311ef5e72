"""Adagrad: per-coordinate learning rates from the accumulated squared gradients."""

from __future__ import annotations

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.base import Optimizer


class Adagrad(Optimizer):
    """Adagrad: ``acc += g^2``; ``w -= lr g / sqrt(acc + eps)``.

    Args:
        learning_rate: float or schedule, default 0.001.
        initial_accumulator_value: float, default 0.1.
        epsilon: float, default 1e-7.
        **kwargs: base optimizer arguments (see ``Optimizer``).
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adagrad", **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, var_list):
        """Create ``accumulator`` slots filled with ``initial_accumulator_value``."""
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(
            var_list, "accumulator", initializer=float(self.initial_accumulator_value))

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Adagrad step in place: one compiled pass (``kernels.adagrad``), or the
        numpy reference with the same bits."""
        acc = self._slot("accumulator", variable)
        if kernels.adagrad(gradient, variable, acc, learning_rate, self.epsilon):
            return
        s, d = self._scratch(variable), self._scratch(variable, 1)
        np.square(gradient, out=s)
        acc += s
        np.add(acc, self.epsilon, out=d)
        np.sqrt(d, out=d)
        np.multiply(gradient, learning_rate, out=s)
        s /= d
        variable -= s

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value,
                       "epsilon": self.epsilon})
        return config
