"""Adam (and AMSGrad), Keras's "epsilon-hat" form."""

from __future__ import annotations

import math

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.base import Optimizer


class Adam(Optimizer):
    """Adam: ``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.

    Args:
        learning_rate: float or schedule, default 0.001.
        beta_1: float, default 0.9.
        beta_2: float, default 0.999.
        epsilon: float, default 1e-7 (added after the bias correction).
        amsgrad: use ``max(v_hat, v)`` in the denominator, default False.
        **kwargs: base optimizer arguments (see ``Optimizer``).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adam", **kwargs):
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
        self.amsgrad = amsgrad

    def build(self, var_list):
        """Create ``momentum``/``velocity`` slots (interleaved), then ``velocity_hat``."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Adam step in place: one compiled pass (``kernels.adam``), or the
        numpy reference (12 whole-array passes, no temporaries) with the same bits."""
        t = self._step() + 1
        b1, b2 = float(self.beta_1), float(self.beta_2)
        alpha = learning_rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = self._slot("momentum", variable)
        v = self._slot("velocity", variable)
        v_hat = self._slot("velocity_hat", variable) if self.amsgrad else None
        if kernels.adam(gradient, variable, m, v, v_hat, 1 - b1, 1 - b2, alpha, self.epsilon):
            return
        s = self._scratch(variable)
        np.subtract(gradient, m, out=s)
        s *= 1 - b1
        m += s
        np.square(gradient, out=s)
        s -= v
        s *= 1 - b2
        v += s
        if self.amsgrad:
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        np.sqrt(v, out=s)
        s += self.epsilon
        np.divide(m, s, out=s)
        s *= alpha
        variable -= s

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2,
                       "epsilon": self.epsilon, "amsgrad": self.amsgrad})
        return config
