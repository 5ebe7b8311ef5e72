"""RMSprop (plain or centered, optional momentum), epsilon inside the square root."""

from __future__ import annotations

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.base import Optimizer


class RMSprop(Optimizer):
    """RMSprop: ``v = rho v + (1 - rho) g^2``; ``w -= lr g / sqrt(v + eps)``.

    Centered: ``a = rho a + (1 - rho) g`` and the denominator is ``sqrt(v - a^2 + eps)``.
    With momentum: ``mom = momentum * mom + increment``; ``w -= mom``.

    Args:
        learning_rate: float or schedule, default 0.001.
        rho: float, default 0.9.
        momentum: float, default 0.0.
        epsilon: float, default 1e-7.
        centered: bool, default False.
        **kwargs: base optimizer arguments (see ``Optimizer``).
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="rmsprop", **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build(self, var_list):
        """Create ``velocity`` slots, then ``momentum``, then ``average_gradient`` ones."""
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        self._momentums = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._average_gradients = []
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")

    def update_step(self, gradient, variable, learning_rate):
        """Apply one RMSprop step in place (one compiled pass, or numpy with the same bits)."""
        rho = float(self.rho)
        v = self._slot("velocity", variable)
        a = self._slot("average_gradient", variable) if self.centered else None
        mom = self._slot("momentum", variable) if self.momentum > 0 else None
        if kernels.rmsprop(gradient, variable, v, a, mom, rho, 1 - rho, self.epsilon,
                           learning_rate, self.momentum):
            return
        s, d = self._scratch(variable), self._scratch(variable, 1)
        v *= rho
        np.square(gradient, out=s)
        s *= 1 - rho
        v += s
        if self.centered:
            a *= rho
            np.multiply(gradient, 1 - rho, out=s)
            a += s
            np.square(a, out=d)
            np.subtract(v, d, out=d)
            d += self.epsilon
        else:
            np.add(v, self.epsilon, out=d)
        np.sqrt(d, out=d)
        np.multiply(gradient, learning_rate, out=s)
        s /= d
        if self.momentum > 0:
            mom *= self.momentum
            mom += s
            variable -= mom
        else:
            variable -= s

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        return config
