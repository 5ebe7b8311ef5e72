"""Adamax: Adam with the infinity norm."""

from __future__ import annotations

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.base import Optimizer


class Adamax(Optimizer):
    """Adamax: ``m += (g - m)(1 - b1)``; ``u = max(b2 u, |g|)``;
    ``w -= lr m / ((1 - b1^t)(u + eps))``.

    Args:
        learning_rate: float or schedule, default 0.001.
        beta_1: float, default 0.9.
        beta_2: float, default 0.999.
        epsilon: float, default 1e-7.
        **kwargs: base optimizer arguments (see ``Optimizer``).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adamax", **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        """Create ``momentum``/``norm`` slots (interleaved)."""
        if self.built:
            return
        super().build(var_list)
        self._m, self._u = self.add_optimizer_variables(var_list, ["momentum", "norm"])

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Adamax step in place: one compiled pass (``kernels.adamax``), or the
        numpy reference with the same bits."""
        t = self._step() + 1
        b1 = float(self.beta_1)
        m, u = self._slot("momentum", variable), self._slot("norm", variable)
        if kernels.adamax(gradient, variable, m, u, 1 - b1, self.beta_2, 1 - b1**t,
                          self.epsilon, learning_rate):
            return
        s = self._scratch(variable)
        np.subtract(gradient, m, out=s)
        s *= 1 - b1
        m += s
        u *= self.beta_2
        np.abs(gradient, out=s)
        np.maximum(u, s, out=u)
        np.add(u, self.epsilon, out=s)
        s *= 1 - b1**t
        np.divide(m, s, out=s)
        s *= learning_rate
        variable -= s

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
