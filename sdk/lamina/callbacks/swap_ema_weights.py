"""``SwapEMAWeights``: evaluate and predict with the optimizer's EMA of the weights."""

from __future__ import annotations

from lamina.callbacks.callback import Callback


class SwapEMAWeights(Callback):
    """Swap the model's weights with the optimizer's moving averages around test/predict.

    Needs an optimizer built with ``use_ema=True``.

    Args:
        swap_on_epoch: also swap at the end of every epoch (so checkpoints saved at epoch
            end hold the EMA weights) and back at the next epoch's start; after the last
            epoch the EMA weights stay in the model.

    Raises:
        ValueError: (when swapping) if the optimizer does not keep moving averages.
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _optimizer(self):
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not hasattr(optimizer, "_model_variables_moving_average"):
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the "
                             f"optimizer. Received: use_ema={optimizer.use_ema}")
        return optimizer

    def _swap_variables(self):
        optimizer = self._optimizer()
        for var, average in zip(optimizer._trainable_variables,
                                optimizer._model_variables_moving_average):
            current = var.numpy()
            var.assign(average.numpy())
            average.assign(current)

    def _finalize_ema_values(self):
        optimizer = self._optimizer()
        for var, average in zip(optimizer._trainable_variables,
                                optimizer._model_variables_moving_average):
            average.assign(var.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True
            if epoch == self.params["epochs"] - 1:
                self._finalize_ema_values()

    def on_test_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def on_test_end(self, logs=None):
        if self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_predict_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def on_predict_end(self, logs=None):
        if self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False
