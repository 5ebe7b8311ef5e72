"""Lion (EvoLved Sign Momentum), Keras's update rule."""

from __future__ import annotations

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.base import Optimizer


class Lion(Optimizer):
    """Lion: ``w -= lr * sign(b1 * m + (1 - b1) * g)``, then ``m = b2 * m + (1 - b2) * g``.

    Args:
        learning_rate: float or schedule, default 0.001.
        beta_1: float in (0, 1], default 0.9 (interpolation for the update's sign).
        beta_2: float, default 0.99 (the momentum's decay).
        **kwargs: base optimizer arguments (see ``Optimizer``).

    Raises:
        ValueError: if ``beta_1`` is not in (0, 1].
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="lion", **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the "
                             f"optimizer degenerates to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def build(self, var_list):
        """Create one ``momentum`` slot per variable."""
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        """Apply one Lion step in place: one compiled pass (``kernels.lion``), or the
        numpy reference with the same bits."""
        b1, b2 = float(self.beta_1), float(self.beta_2)
        m = self._slot("momentum", variable)
        if kernels.lion(gradient, variable, m, b1, 1.0 - b1, b2, 1.0 - b2, learning_rate):
            return
        s = self._scratch(variable)
        t = self._scratch(variable, 1)
        np.multiply(m, b1, out=s)
        np.multiply(gradient, 1.0 - b1, out=t)
        s += t
        np.sign(s, out=s)
        s *= learning_rate
        variable -= s
        m *= b2
        np.multiply(gradient, 1.0 - b2, out=t)
        m += t

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return config
