"""LAMB: Adam's step rescaled per variable by the trust ratio ``||w|| / ||update||``."""

from __future__ import annotations

import math

import numpy as np

from lamina.optimizers.base import Optimizer


class Lamb(Optimizer):
    """LAMB, Keras's update rule (the trust ratio needs per-variable norms, so each
    variable is updated on its own view of the flat buffers).

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
                 name=None, **kwargs):
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
        """Create ``momentum``/``velocity`` slots."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])

    def _backend_update_step(self, grads, variables, learning_rate):
        params = {id(seg.param): seg for seg in self._segments}
        for grad, var in zip(grads, variables):
            seg = params.get(id(var))
            if seg is None:
                self.update_step(grad, var, learning_rate)
                continue
            for i, view in enumerate(seg.views):
                part = grad[seg.offsets[i]:seg.offsets[i + 1]].reshape(view.shape)
                self.update_step(part, view, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        """Apply one LAMB step to one variable in place."""
        t = self._step() + 1
        b1, b2 = float(self.beta_1), float(self.beta_2)
        m = self._slot("momentum", variable)
        v = self._slot("velocity", variable)
        s = self._scratch(variable)
        np.subtract(gradient, m, out=s)
        s *= 1 - b1
        m += s
        np.square(gradient, out=s)
        s -= v
        s *= 1 - b2
        v += s
        np.divide(v, 1.0 - b2**t, out=s)
        np.sqrt(s, out=s)
        s += self.epsilon
        np.divide(m, s, out=s)
        s /= 1.0 - b1**t
        w_norm = math.sqrt(float(np.sum(np.square(variable, dtype=np.float64))))
        g_norm = math.sqrt(float(np.sum(np.square(s, dtype=np.float64))))
        ratio = w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
        s *= ratio * learning_rate
        variable -= s

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
