"""Adafactor: factored second moments (row and column means) for matrices, Keras's rule."""

from __future__ import annotations

import math

import numpy as np

from lamina.optimizers.base import Optimizer


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018) as Keras implements it.

    Variables of rank >= 2 keep a row statistic ``r`` (shape ``[:-1]``) and a column
    statistic ``c`` (shape ``[:-2] + [-1]``); smaller ones keep a full ``velocity``. Each
    variable is updated on its own (the RMS terms are per variable).

    Args:
        learning_rate: float or schedule, default 0.001.
        beta_2_decay: float, default -0.8 (``beta_2_t = 1 - t**beta_2_decay``).
        epsilon_1: float, default 1e-30, added to the squared gradient.
        epsilon_2: float, default 1e-3, the floor of the variable's RMS in the step size.
        clip_threshold: float, default 1.0, for the update's RMS.
        relative_step: bool, default True; a float learning rate is capped by ``1/sqrt(t)``.
        **kwargs: base optimizer arguments (see ``Optimizer``).
    """

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30,
                 epsilon_2=1e-3, clip_threshold=1.0, relative_step=True,
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
        self.beta_2_decay = beta_2_decay
        self.epsilon_1 = epsilon_1
        self.epsilon_2 = epsilon_2
        self.clip_threshold = clip_threshold
        self.relative_step = relative_step

    def build(self, var_list):
        """Create ``r``/``c`` (rank >= 2) and ``velocity`` state per variable."""
        if self.built:
            return
        super().build(var_list)
        self._r, self._c, self._v = [], [], []
        self._state: dict[int, tuple] = {}
        for var in var_list:
            shape, dtype = var.data.shape, var.data.dtype
            if len(shape) < 2:
                r = c = None
            else:
                r = self.add_variable(np.zeros(shape[:-1], dtype), var.name)
                c = self.add_variable(np.zeros(shape[:-2] + shape[-1:], dtype), var.name)
            v = self.add_variable(np.zeros(shape, dtype), f"{var.name}_velocity")
            self._r.append(r)
            self._c.append(c)
            self._v.append(v)
            self._state[id(self._var_units[id(var)])] = (r, c, v)

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
        """Apply one Adafactor step to one variable in place."""
        r, c, v = self._state[id(self._units[id(variable)])]
        t = float(self._step() + 1)
        lr = learning_rate
        if self.relative_step and not callable(self._learning_rate):
            lr = min(lr, 1 / math.sqrt(t))
        rho_t = min(lr, 1 / math.sqrt(t))
        alpha_t = max(self.epsilon_2, _rms(variable)) * rho_t
        grad_sq = np.square(gradient) + self.epsilon_1
        beta_2_t = 1 - t**self.beta_2_decay
        if variable.ndim >= 2:
            r.data[...] = beta_2_t * r.data + (1 - beta_2_t) * grad_sq.mean(axis=-1)
            c.data[...] = beta_2_t * c.data + (1 - beta_2_t) * grad_sq.mean(axis=-2)
            v.data[...] = (np.expand_dims(r.data / r.data.mean(axis=-1, keepdims=True), -1)
                           * np.expand_dims(c.data, -2))
        else:
            v.data[...] = beta_2_t * v.data + (1 - beta_2_t) * grad_sq
        u_t = gradient / np.sqrt(v.data)
        u_t_hat = u_t / max(1.0, _rms(u_t) / self.clip_threshold)
        variable -= (alpha_t * u_t_hat).astype(variable.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                       "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                       "relative_step": self.relative_step})
        return config
