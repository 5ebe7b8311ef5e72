"""MultiOptimizer/OptimizerMap routing and config, Muon and ScheduleFreeAdamW in fit
(their update rules are checked against Keras in test_keras_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina import optimizers


def test_optimizer_map_matches_exact_keys_then_patterns():
    adam, sgd, rms = optimizers.Adam(), optimizers.SGD(), optimizers.RMSprop()
    mapping = optimizers.OptimizerMap(rms)
    mapping["encoder/layer_0/dense"] = adam
    mapping["encoder/.*"] = sgd
    assert mapping["encoder/layer_0/dense"] is adam
    assert mapping["encoder/layer_0/attention/query"] is sgd
    assert mapping["decoder/dense"] is rms
    mapping["encoder/layer_0/.*"] = optimizers.Nadam()
    with pytest.raises(ValueError, match="Multiple optimizers assigned"):
        mapping["encoder/layer_0/x"]
    with pytest.raises(ValueError, match="already exists"):
        mapping["encoder/.*"] = adam
    with pytest.raises(ValueError, match="cannot be a LossScaleOptimizer"):
        mapping["x"] = optimizers.LossScaleOptimizer(optimizers.SGD())
    with pytest.raises(TypeError, match="default_optimizer must be"):
        optimizers.OptimizerMap("sgd")


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(8, activation="relu", name="encoder")(inputs)
    outputs = keras.layers.Dense(1, name="head")(hidden)
    return keras.Model(inputs, outputs)


def test_multi_optimizer_routes_each_variable_and_equals_separate_optimizers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model = _model()
    opt = optimizers.MultiOptimizer(optimizers.OptimizerMap(
        optimizers.SGD(0.05), {"encoder/.*": optimizers.Adam(0.01)}))
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    adam, sgd = opt.optimizers
    assert int(adam.iterations.numpy()) == 8 and int(sgd.iterations.numpy()) == 8
    assert [v.path for v in adam._trainable_variables] == ["encoder/kernel", "encoder/bias"]
    with pytest.raises(AttributeError, match="individual sub-optimizers"):
        opt.learning_rate  # noqa: B018

    # The same steps taken by hand: Adam on the encoder, SGD on the head.
    reference = _model()
    reference.compile(optimizer="sgd", loss="mse")
    enc, head = reference.trainable_weights[:2], reference.trainable_weights[2:]
    adam_ref, sgd_ref = optimizers.Adam(0.01), optimizers.SGD(0.05)
    for _ in range(2):
        for i in range(0, 32, 8):
            loss = keras.ops.mean(keras.losses.mean_squared_error(
                y[i:i + 8], reference(x[i:i + 8], training=True)))
            grads = keras.backend.gradients(loss, enc + head)
            adam_ref.apply(grads[:2], enc)
            sgd_ref.apply(grads[2:], head)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_multi_optimizer_config_round_trip_and_function_maps():
    opt = optimizers.MultiOptimizer(optimizers.OptimizerMap(
        optimizers.SGD(0.05), {"v1": optimizers.Adam(0.01)}), loss_scale_factor=2.0)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert isinstance(again, optimizers.MultiOptimizer)
    assert again.get_config() == opt.get_config()
    by_function = optimizers.MultiOptimizer(lambda v: optimizers.SGD())
    with pytest.raises(ValueError, match="built on a function cannot be serialized"):
        by_function.get_config()


@pytest.mark.parametrize("name", ["muon", "schedule_free_adam_w"])
def test_new_optimizers_train_a_model(name):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    model = _model()
    opt = optimizers.Muon(learning_rate=0.02) if name == "muon" else \
        optimizers.ScheduleFreeAdamW(learning_rate=0.02)
    assert opt.name.startswith(name)  # Keras numbers later instances: muon_1, ...
    model.compile(optimizer=opt, loss="mse")
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert again.get_config() == opt.get_config()


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="ns_steps=-1"):
        optimizers.Muon(ns_steps=-1)
    with pytest.raises(ValueError, match="warmup_steps=1.5"):
        optimizers.ScheduleFreeAdamW(warmup_steps=1.5)
