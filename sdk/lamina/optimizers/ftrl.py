"""FTRL-Proximal, Keras's update rule (with L2 shrinkage and ``beta``)."""

from __future__ import annotations

import numpy as np

from lamina.optimizers.base import Optimizer


class Ftrl(Optimizer):
    """Follow The Regularized Leader.

    Args:
        learning_rate: float or schedule, default 0.001.
        learning_rate_power: float <= 0, default -0.5.
        initial_accumulator_value: float >= 0, default 0.1.
        l1_regularization_strength: float >= 0, default 0.0.
        l2_regularization_strength: float >= 0, default 0.0.
        l2_shrinkage_regularization_strength: float >= 0, default 0.0 (a magnitude
            penalty on the gradient, unlike the stabilising L2 above).
        beta: float, default 0.0.
        **kwargs: base optimizer arguments (see ``Optimizer``).

    Raises:
        ValueError: naming the argument for a negative strength or accumulator, or a
            positive ``learning_rate_power``.
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if initial_accumulator_value < 0.0:
            raise ValueError("`initial_accumulator_value` needs to be positive or zero. "
                             f"Received: initial_accumulator_value={initial_accumulator_value}.")
        if learning_rate_power > 0.0:
            raise ValueError("`learning_rate_power` needs to be negative or zero. Received: "
                             f"learning_rate_power={learning_rate_power}.")
        for arg, value in (("l1_regularization_strength", l1_regularization_strength),
                           ("l2_regularization_strength", l2_regularization_strength),
                           ("l2_shrinkage_regularization_strength",
                            l2_shrinkage_regularization_strength)):
            if value < 0.0:
                raise ValueError(f"`{arg}` needs to be positive or zero. "
                                 f"Received: {arg}={value}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def build(self, var_list):
        """Create ``accumulator`` (filled with ``initial_accumulator_value``) and ``linear``."""
        if self.built:
            return
        super().build(var_list)
        self._accumulators, self._linears = self.add_optimizer_variables(
            var_list, ["accumulator", "linear"],
            initializer=[self.initial_accumulator_value, "zeros"])

    def update_step(self, gradient, variable, learning_rate):
        """Apply one FTRL step in place."""
        accum = self._slot("accumulator", variable)
        linear = self._slot("linear", variable)
        p = -float(self.learning_rate_power)
        l1 = float(self.l1_regularization_strength)
        l2 = float(self.l2_regularization_strength) + self.beta / (2.0 * learning_rate)
        new_accum = accum + np.square(gradient)
        new_pow = np.power(new_accum, p)
        linear += (gradient + 2 * self.l2_shrinkage_regularization_strength * variable) - (
            (new_pow - np.power(accum, p)) / learning_rate) * variable
        quadratic = new_pow / learning_rate + 2 * l2
        variable[...] = (np.clip(linear, -l1, l1) - linear) / quadratic
        accum[...] = new_accum

    def get_config(self):
        config = super().get_config()
        config.update({
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1_regularization_strength,
            "l2_regularization_strength": self.l2_regularization_strength,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
            "beta": self.beta})
        return config
