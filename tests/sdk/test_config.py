"""``keras.config``, ``keras.dtype_policies``, ``keras.mixed_precision`` and ``keras.device``."""

from __future__ import annotations

import pytest

import lamina
from lamina import config, dtype_policies, mixed_precision


@pytest.fixture(autouse=True)
def _restore():
    yield
    config.set_max_epochs(None)
    config.set_max_steps_per_epoch(None)
    config.enable_interactive_logging()
    config.enable_traceback_filtering()
    config._STATE["dtype_policy"] = None


def test_backend_is_numpy_and_cannot_change():
    assert config.backend() == "numpy" and not config.is_nnx_enabled()
    config.set_backend("numpy")
    with pytest.raises(ValueError, match="backend='jax'"):
        config.set_backend("jax")


def test_toggles_report_what_was_set():
    assert config.is_traceback_filtering_enabled()
    config.disable_traceback_filtering()
    assert not config.is_traceback_filtering_enabled()
    config.disable_interactive_logging()
    assert not config.is_interactive_logging_enabled()
    assert config.is_flash_attention_enabled() in (None, True, False)
    config.enable_flash_attention()
    assert config.is_flash_attention_enabled() is True
    config.disable_flash_attention()
    assert config.is_flash_attention_enabled() is False


def test_floatx_epsilon_image_format_share_the_backend_settings():
    assert config.floatx() == lamina.backend.floatx() == "float32"
    assert config.image_data_format() == "channels_last"
    with pytest.raises(ValueError, match="data_format='channels_first'"):
        config.set_image_data_format("channels_first")


@pytest.mark.parametrize("setter,value", [
    (config.set_max_epochs, 0), (config.set_max_epochs, "3"),
    (config.set_max_steps_per_epoch, -1)])
def test_caps_validate(setter, value):
    with pytest.raises(ValueError, match=f"={value!r}"):
        setter(value)


def test_mixed_policies_are_accepted_and_compute_in_float32():
    policy = dtype_policies.DTypePolicy("mixed_float16")
    assert (policy.name, policy.compute_dtype, policy.variable_dtype) == (
        "mixed_float16", "float32", "float32")
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert mixed_precision.global_policy().name == "mixed_bfloat16"
    assert config.dtype_policy() == dtype_policies.get("mixed_bfloat16")
    round_trip = dtype_policies.deserialize(dtype_policies.serialize(policy))
    assert round_trip == policy and lamina.FloatDTypePolicy is lamina.DTypePolicy
    with pytest.raises(ValueError, match="name='int8_magic'"):
        dtype_policies.DTypePolicy("int8_magic")
    with pytest.raises(ValueError, match="policy=3"):
        config.set_dtype_policy(3)


def test_device_accepts_the_cpu_only():
    for name in ("cpu", "CPU:0", "/cpu:0", "/device:CPU:0"):
        with lamina.device(name):
            pass
    for name in ("gpu", "/device:GPU:0", 3):
        with pytest.raises(ValueError, match="device_name="), lamina.device(name):
            pass


def test_caps_limit_every_fit():
    import numpy as np

    model = lamina.Sequential([lamina.Input((3,)), lamina.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((40, 3), "float32"), np.ones((40, 1), "float32")
    config.set_max_epochs(2)
    config.set_max_steps_per_epoch(3)
    steps = []
    count = lamina.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: steps.append(b))
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[count])
    assert len(history.history["loss"]) == 2 and steps == [0, 1, 2, 0, 1, 2]


def test_step_cap_limits_validation_evaluate_and_predict_as_in_keras():
    # Keras 3.15.1 (checked in a side venv): with the cap at 3 and 10 batches, fit's
    # validation and evaluate run 3 test batches and predict returns 3 batches' rows.
    import numpy as np

    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((100, 4), "float32"), np.ones((100, 1), "float32")
    config.set_max_steps_per_epoch(3)
    tested = []
    count = lamina.callbacks.LambdaCallback(on_test_batch_end=lambda b, logs: tested.append(b))
    model.fit(x, y, batch_size=10, epochs=1, validation_data=(x, y), verbose=0,
              callbacks=[count])
    assert tested == [0, 1, 2]
    tested.clear()
    model.evaluate(x, y, batch_size=10, verbose=0, callbacks=[count])
    assert tested == [0, 1, 2]
    assert model.predict(x, batch_size=10, verbose=0).shape == (30, 1)


def test_disabled_interactive_logging_sends_progress_to_the_logger(capsys, caplog):
    import logging

    import numpy as np

    model = lamina.Sequential([lamina.Input((3,)), lamina.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    config.disable_interactive_logging()
    with caplog.at_level(logging.INFO, logger="lamina"):
        model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), epochs=1,
                  verbose=1)
    assert "Epoch 1/1" not in capsys.readouterr().out
    assert any("loss" in r.getMessage() for r in caplog.records)


def test_backend_helpers():
    from lamina import backend

    assert backend.backend() == "numpy"
    first = backend.get_uid("test_prefix")
    assert backend.get_uid("test_prefix") == first + 1
    backend.clear_session()
    assert backend.get_uid("test_prefix") == 1
    assert backend.result_type("int32", float) == "float32"
    assert backend.result_type("uint8", "int8") == "int16"
    assert backend.is_float_dtype("float16") and not backend.is_float_dtype("int8")
    assert backend.is_int_dtype("uint8") and not backend.is_int_dtype("bool")
    assert backend.is_keras_tensor(lamina.Input((2,))) and not backend.is_keras_tensor(1.0)


def test_get_custom_objects_is_the_registry():
    from lamina import saving

    class Twice(lamina.layers.Layer):
        def call(self, x):
            return x * 2

    saving.get_custom_objects()["Twice"] = Twice
    try:
        assert saving.get_registered_object("Twice") is Twice
        assert saving.get_registered_object("Nope", module_objects={"Nope": 1}) == 1
    finally:
        del saving.get_custom_objects()["Twice"]


def test_utils_reexports_the_logging_toggles_and_custom_objects():
    from lamina import saving, utils

    assert utils.disable_interactive_logging is config.disable_interactive_logging
    assert utils.is_interactive_logging_enabled is config.is_interactive_logging_enabled
    assert utils.get_custom_objects() is saving.get_custom_objects()


def test_star_import_of_lamina_works():
    namespace = {}
    exec("from lamina import *", namespace)  # noqa: S102 - the statement under test
    assert all(name in namespace for name in lamina.__all__)


def test_dtype_policy_lookup_errors_name_the_value():
    with pytest.raises(ValueError, match="identifier=3"):
        dtype_policies.get(3)
    with pytest.raises(ValueError, match="config="):
        dtype_policies.deserialize({"class_name": "Quantized", "config": {}})
    assert dtype_policies.get(None) == config.dtype_policy()
    assert mixed_precision.LossScaleOptimizer is lamina.optimizers.LossScaleOptimizer


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16", "policy"])
def test_a_layer_takes_a_mixed_policy_and_computes_in_float32(dtype):
    import numpy as np

    from lamina import dtype_policies

    if dtype == "policy":
        dtype = dtype_policies.DTypePolicy("mixed_float16")
    layer = lamina.layers.Dense(2, dtype=dtype)
    out = layer(np.ones((1, 3), "float32"))
    assert out.dtype == "float32" and layer.kernel.dtype == "float32"
