"""Muon: momentum orthogonalised by Newton-Schulz for matrices, AdamW for the rest."""

from __future__ import annotations

import math
import re

import numpy as np

from lamina.optimizers.base import Optimizer


class Muon(Optimizer):
    """Muon (Keras 3's ``keras.optimizers.Muon``).

    2-D variables take the Muon step: Nesterov momentum, orthogonalised by ``ns_steps``
    quintic Newton-Schulz iterations and scaled by ``sqrt(max(n, m)) * rms_rate``. Every
    other variable — not 2-D, an embedding when ``exclude_embeddings``, or one whose path
    matches a pattern of ``exclude_layers`` — takes an AdamW step at
    ``learning_rate * adam_lr_ratio``, decayed by ``adam_weight_decay``.

    Args:
        learning_rate: float or schedule, default 0.001.
        adam_beta_1, adam_beta_2: the AdamW moments' decay rates (0.9, 0.999).
        adam_weight_decay: decoupled weight decay of the AdamW variables (0.004).
        epsilon: AdamW's epsilon (1e-7).
        weight_decay: decoupled weight decay of the Muon variables (0.004).
        exclude_layers: regular expressions; matching variable paths use AdamW.
        exclude_embeddings: embeddings use AdamW (default True).
        muon_a, muon_b, muon_c: the Newton-Schulz polynomial's coefficients.
        adam_lr_ratio: AdamW's learning rate over ``learning_rate`` (1).
        momentum: the Muon momentum (0.95).
        ns_steps: Newton-Schulz iterations (5).
        nesterov: Nesterov momentum (True).
        rms_rate: the update's RMS scale (0.2); ``None`` turns the scaling off.
        **kwargs: base optimizer arguments (see ``Optimizer``).

    Raises:
        ValueError: for a negative ``ns_steps``.
    """

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999,
                 adam_weight_decay=0.004, epsilon=1e-7, weight_decay=0.004, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, exclude_layers=None,
                 exclude_embeddings=True, muon_a=3.4445, muon_b=-4.7750, muon_c=2.0315,
                 adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True, rms_rate=0.2,
                 **kwargs):
        super().__init__(
            learning_rate=learning_rate, name=name, weight_decay=weight_decay,
            clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm,
            use_ema=use_ema, ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) or ns_steps < 0:
            raise ValueError(f"`ns_steps` must be a non-negative integer. Received: "
                             f"ns_steps={ns_steps!r}")
        self.adam_beta_1, self.adam_beta_2 = adam_beta_1, adam_beta_2
        self.epsilon = epsilon
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio = adam_lr_ratio
        self.momentum = momentum
        self.ns_steps = ns_steps
        self.nesterov = nesterov
        self.exclude_embeddings = exclude_embeddings
        self.exclude_layers = list(exclude_layers or [])
        self.adam_weight_decay = adam_weight_decay
        self.rms_rate = rms_rate

    def _should_use_adamw(self, variable) -> bool:
        if len(variable.shape) != 2:
            return True
        path = getattr(variable, "path", None) or variable.name
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers)

    def build(self, var_list):
        """A ``momentum`` slot for every variable, a ``velocity`` for the AdamW ones."""
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._adamw = {id(v) for v in var_list if self._should_use_adamw(v)}
        self._velocities = self.add_optimizer_variables(
            [v for v in var_list if id(v) in self._adamw], "velocity")

    # -- weight decay: per variable, as Keras's Muon._apply_weight_decay ---------------------
    def _has_weight_decay(self) -> bool:
        return bool(self.weight_decay) or bool(self.adam_weight_decay)

    def _weight_decay_for(self, var):
        if not self._use_weight_decay(var):
            return None
        return self.adam_weight_decay if id(var) in self._adamw else self.weight_decay

    # -- updates -------------------------------------------------------------------------------
    def _backend_update_step(self, grads, variables, learning_rate):
        params = {id(seg.param): seg for seg in self._segments}
        by_view = {id(view): var for seg in self._segments
                   for var, view in zip(seg.variables, seg.views)}
        for grad, var in zip(grads, variables):
            seg = params.get(id(var))
            if seg is None:
                self._update_one(grad, var, by_view.get(id(var)), learning_rate)
                continue
            for i, (view, variable) in enumerate(zip(seg.views, seg.variables)):
                part = grad[seg.offsets[i]:seg.offsets[i + 1]].reshape(view.shape)
                self._update_one(part, view, variable, learning_rate)

    def _update_one(self, gradient, view, variable, learning_rate):
        if variable is None or id(variable) in self._adamw:
            self._adamw_step(gradient, view, learning_rate * self.adam_lr_ratio)
        else:
            self._muon_step(gradient, view, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        """One step of ``variable`` (an array view): AdamW for 1-D views, else Muon."""
        if variable.ndim == 2:
            self._muon_step(gradient, variable, learning_rate)
        else:
            self._adamw_step(gradient, variable, learning_rate * self.adam_lr_ratio)

    def _adamw_step(self, gradient, variable, learning_rate):
        t = self._step() + 1
        b1, b2 = float(self.adam_beta_1), float(self.adam_beta_2)
        alpha = learning_rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = self._slot("momentum", variable)
        v = self._slot("velocity", variable)
        m += (gradient - m) * (1 - b1)
        v += (np.square(gradient) - v) * (1 - b2)
        variable -= (m * alpha) / (np.sqrt(v) + self.epsilon)

    def _muon_step(self, gradient, variable, learning_rate):
        m = self._slot("momentum", variable)
        m += gradient + m * (self.momentum - 1)
        g = gradient + self.momentum * m if self.nesterov else m
        update = learning_rate * self._newton_schulz(g.astype(np.float32, copy=False))
        if self.rms_rate is not None:
            update = update * (math.sqrt(max(update.shape[0], update.shape[1]))
                               * self.rms_rate)
        variable -= update.astype(variable.dtype, copy=False)

    def _newton_schulz(self, x):
        """Keras's quintic Newton-Schulz iteration towards the orthogonal factor of ``x``."""
        a, b, c = self.muon_a, self.muon_b, self.muon_c
        tall = x.shape[-2] > x.shape[-1]
        if tall:
            x = np.swapaxes(x, -1, -2)
        x = x / (np.linalg.norm(x, axis=(-2, -1), keepdims=True) + 1e-7)
        for _ in range(self.ns_steps):
            gram = x @ np.swapaxes(x, -1, -2)
            x = a * x + (b * gram + c * gram @ gram) @ x
        return np.swapaxes(x, -1, -2) if tall else x

    def get_config(self):
        config = super().get_config()
        config.update({
            "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
            "epsilon": self.epsilon, "exclude_layers": self.exclude_layers,
            "muon_a": self.muon_a, "muon_b": self.muon_b, "muon_c": self.muon_c,
            "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum,
            "ns_steps": self.ns_steps, "nesterov": self.nesterov,
            "exclude_embeddings": self.exclude_embeddings,
            "adam_weight_decay": self.adam_weight_decay, "rms_rate": self.rms_rate,
        })
        return config
