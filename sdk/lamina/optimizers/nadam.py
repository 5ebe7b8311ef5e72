"""Nadam: Adam with Nesterov momentum (Dozat's momentum schedule, as Keras)."""

from __future__ import annotations

import numpy as np

from lamina.optimizers.base import Optimizer


class Nadam(Optimizer):
    """Nadam with ``u_t = b1 (1 - 0.5 * 0.96^t)`` and a running product of ``u_t``.

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
                 name="nadam", **kwargs):
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
        """Create ``momentum``/``velocity`` slots (interleaved) and ``u_product``."""
        if self.built:
            return
        dtype = var_list[0].data.dtype if var_list else np.float32
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        self._u_product = self.add_variable(np.array(1.0, dtype=dtype), "u_product")

    def _backend_update_step(self, grads, variables, learning_rate):
        t = self._step() + 1
        u_t = float(self.beta_1) * (1.0 - 0.5 * 0.96**t)
        self._u_product.assign(self._u_product.data * u_t)
        super()._backend_update_step(grads, variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Nadam step in place."""
        t = self._step() + 1
        b1, b2 = float(self.beta_1), float(self.beta_2)
        u_t = b1 * (1.0 - 0.5 * 0.96**t)
        u_t_1 = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        u_product_t = float(self._u_product.data)
        u_product_t_1 = u_product_t * u_t_1
        m, v = self._slot("momentum", variable), self._slot("velocity", variable)
        s, d = self._scratch(variable), self._scratch(variable, 1)
        np.subtract(gradient, m, out=s)
        s *= 1 - b1
        m += s
        np.square(gradient, out=s)
        s -= v
        s *= 1 - b2
        v += s
        np.multiply(m, u_t_1 / (1 - u_product_t_1), out=s)
        np.multiply(gradient, (1 - u_t) / (1 - u_product_t), out=d)
        s += d
        s *= learning_rate
        np.multiply(v, 1 / (1 - b2**t), out=d)
        np.sqrt(d, out=d)
        d += self.epsilon
        s /= d
        variable -= s

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
