"""Adadelta: step sizes from running averages of squared gradients and updates."""

from __future__ import annotations

import numpy as np

from lamina.optimizers.base import Optimizer


class Adadelta(Optimizer):
    """Adadelta (Keras form, scaled by ``learning_rate``).

    ``ag = rho ag + (1 - rho) g^2``; ``delta = -sqrt(ad + eps) g / sqrt(ag + eps)``;
    ``ad = rho ad + (1 - rho) delta^2``; ``w += lr * delta``.

    Args:
        learning_rate: float or schedule, default 0.001.
        rho: float, default 0.95.
        epsilon: float, default 1e-7.
        **kwargs: base optimizer arguments (see ``Optimizer``).
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adadelta", **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, var_list):
        """Create ``accumulated_grad``/``accumulated_delta_var`` slots (interleaved)."""
        if self.built:
            return
        super().build(var_list)
        self._accumulated_grads, self._accumulated_delta_vars = self.add_optimizer_variables(
            var_list, ["accumulated_grad", "accumulated_delta_var"])

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Adadelta step in place."""
        rho, eps = float(self.rho), self.epsilon
        ag = self._slot("accumulated_grad", variable)
        ad = self._slot("accumulated_delta_var", variable)
        s, d = self._scratch(variable), self._scratch(variable, 1)
        ag *= rho
        np.square(gradient, out=s)
        s *= 1 - rho
        ag += s
        np.add(ad, eps, out=d)
        np.sqrt(d, out=d)
        d *= gradient
        np.add(ag, eps, out=s)
        np.sqrt(s, out=s)
        np.divide(d, s, out=d)
        np.negative(d, out=d)
        ad *= rho
        np.square(d, out=s)
        s *= 1 - rho
        ad += s
        d *= learning_rate
        variable += d

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
