"""Schedule-free AdamW (Defazio et al., 2024), Keras's update rule."""

from __future__ import annotations

import numpy as np

from lamina.optimizers.base import Optimizer


class ScheduleFreeAdamW(Optimizer):
    """AdamW without a learning-rate schedule (``keras.optimizers.ScheduleFreeAdamW``).

    The variables hold the interpolation ``y = (1 - b1) * z + b1 * x`` of the Adam
    iterate ``z`` (the ``momentum`` slot, started at the variables' values) and the
    uniform average ``x`` of the ``z``s; a linear warm-up of ``warmup_steps`` scales
    the learning rate.

    Args:
        learning_rate: float or schedule, default 0.0025.
        beta_1: the interpolation weight (0.9).
        beta_2: the second moment's decay (0.999).
        epsilon: added to the denominator (1e-8).
        warmup_steps: steps of linear learning-rate warm-up (0: none).
        **kwargs: base optimizer arguments (see ``Optimizer``).

    Raises:
        ValueError: for a negative ``warmup_steps``.
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 warmup_steps=0, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name,
            weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
            global_clipnorm=global_clipnorm, use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be a non-negative integer. Received: "
                             f"warmup_steps={warmup_steps!r}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.warmup_steps = warmup_steps

    def build(self, var_list):
        """``momentum`` (the iterate z, started at the variables) and ``velocity`` slots."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        for seg in self._segments:
            np.copyto(seg.slots["momentum"], seg.param)

    def update_step(self, gradient, variable, learning_rate):
        """One schedule-free step of ``variable`` in place."""
        t = self._step() + 1
        b1, b2 = float(self.beta_1), float(self.beta_2)
        lr = learning_rate
        if self.warmup_steps > 0:
            lr = lr * min(t / self.warmup_steps, 1.0)
        z = self._slot("momentum", variable)
        v = self._slot("velocity", variable)
        z_old = z.copy()
        v += (np.square(gradient) - v) * (1 - b2)
        denom = np.sqrt(v / (1 - b2**t)) + self.epsilon
        z -= (lr * gradient) / denom
        weight = 1.0 / t
        x_old = (variable - (1 - b1) * z_old) / b1
        x_new = (1 - weight) * x_old + weight * z
        variable[...] = (1 - b1) * z + b1 * x_new

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "warmup_steps": self.warmup_steps})
        return config


