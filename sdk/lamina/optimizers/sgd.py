"""SGD with optional (Nesterov) momentum, Keras's update rule."""

from __future__ import annotations

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.base import Optimizer


class SGD(Optimizer):
    """Gradient descent with momentum.

    ``m = momentum * m - lr * g``; ``w += m`` (or ``w += momentum * m - lr * g`` with
    Nesterov); without momentum ``w -= lr * g``.

    Args:
        learning_rate: float or schedule, default 0.01.
        momentum: float in [0, 1], default 0.0.
        nesterov: bool, default False.
        **kwargs: base optimizer arguments (weight_decay, clipnorm, ...; see ``Optimizer``).

    Raises:
        ValueError: if ``momentum`` is not a float in [0, 1].
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="SGD", **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if not isinstance(momentum, (float, int)) or momentum < 0 or momentum > 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: "
                             f"momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def build(self, variables):
        """Create one ``momentum`` slot per variable when ``momentum != 0``."""
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        """Apply one SGD step in place (one compiled pass, or numpy with the same bits)."""
        m = self._slot("momentum", variable) if self.momentum != 0 else None
        if kernels.sgd(gradient, variable, m, learning_rate, self.momentum, self.nesterov):
            return
        step = self._scratch(variable)
        np.multiply(gradient, learning_rate, out=step)
        if self.momentum == 0:
            variable -= step
            return
        m *= self.momentum
        m -= step
        if self.nesterov:
            nesterov = self._scratch(variable, 1)
            np.multiply(m, self.momentum, out=nesterov)
            nesterov -= step
            variable += nesterov
        else:
            variable += m

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
