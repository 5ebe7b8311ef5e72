"""The optimizer's gradient accumulation and exponential moving average, as in Keras."""

from __future__ import annotations

import numpy as np


class AccumulationAndEma:
    """:class:`~lamina.optimizers.base.Optimizer`'s ``gradient_accumulation_steps`` and
    ``use_ema`` (a mixin: the slots are made by ``Optimizer.build``)."""

    def _accumulate(self, grads: list, accs: list) -> bool:
        """Keras's gradient accumulation; True when this call applies an update.

        ``grads`` are updated in place to the mean accumulated gradient on update steps.
        """
        steps = self.gradient_accumulation_steps
        if not steps:
            return True
        if (int(self._iterations.data) + 1) % steps != 0:
            for g, acc in zip(grads, accs):
                acc += g
            return False
        for g, acc in zip(grads, accs):
            g += acc
            g /= steps
            acc[...] = 0
        return True

    def _update_ema(self) -> None:
        """Keras's EMA of the trainable variables, overwriting them every N updates."""
        if not self.use_ema:
            return
        momentum = self.ema_momentum if self._step() != 0 else 0.0
        for seg in self._segments:
            average = seg.slots["average"]
            average *= momentum
            average += (1 - momentum) * seg.param
        freq = self.ema_overwrite_frequency
        if freq and (self._step() + 1) % freq == 0:
            for seg in self._segments:
                np.copyto(seg.param, seg.slots["average"])

    def finalize_variable_values(self, var_list) -> None:
        """With ``use_ema``, replace the variables' values by their moving averages."""
        if self.use_ema:
            for var, average in zip(var_list, self._model_variables_moving_average):
                var.assign(average.numpy())
