"""LossScaleOptimizer: unscaled inner updates, growth after N finite steps, skip on NaN."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import optimizers
from lamina.backend import Variable


def test_dynamic_scaling_and_skipping():
    var = Variable(np.array([1.0, 2.0], np.float32), name="w")
    opt = optimizers.LossScaleOptimizer(optimizers.SGD(0.5), initial_scale=4.0,
                                        dynamic_growth_steps=2)
    opt.apply([np.array([4.0, 8.0], np.float32)], [var])
    np.testing.assert_allclose(var.numpy(), [0.5, 1.0])
    assert float(opt.dynamic_scale.numpy()) == 4.0
    opt.apply([np.array([4.0, 4.0], np.float32)], [var])
    np.testing.assert_allclose(var.numpy(), [0.0, 0.5])
    assert float(opt.dynamic_scale.numpy()) == 8.0
    opt.apply([np.array([np.nan, 1.0], np.float32)], [var])
    np.testing.assert_allclose(var.numpy(), [0.0, 0.5])
    assert float(opt.dynamic_scale.numpy()) == 4.0 and int(opt.step_counter.numpy()) == 0
    assert int(opt.iterations.numpy()) == 2
    assert opt.scale_loss(2.0) == 8.0


def test_config_round_trip_and_rejected_arguments():
    opt = optimizers.LossScaleOptimizer(optimizers.Adam(0.01), initial_scale=8.0)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert isinstance(again.inner_optimizer, optimizers.Adam) and again.initial_scale == 8.0
    with pytest.raises(ValueError, match="`clipnorm`"):
        optimizers.LossScaleOptimizer(optimizers.SGD(), clipnorm=1.0)
