"""LoRA on Dense, Embedding and EinsumDense, and the ``quantization_config`` argument.

Keras's behaviour: after ``enable_lora`` the main weight is frozen, the factors train,
the layer computes with ``w + (alpha / rank) * a @ b``, and weights files hold the
merged weight (loading zeroes the factors).
"""

import h5py
import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test


@pytest.mark.parametrize("cls, kwargs, shape, dtype, n_params", [
    (layers.Dense, {"units": 3, "lora_rank": 2, "lora_alpha": 4}, (4, 5), None,
     15 + 3 + 10 + 6),
    (layers.Embedding, {"input_dim": 6, "output_dim": 3, "lora_rank": 2}, (2, 4), "int32",
     18 + 12 + 6),
])
def test_run_layer_test_with_lora(cls, kwargs, shape, dtype, n_params):
    layer = run_layer_test(cls, kwargs, input_shape=shape, input_dtype=dtype,
                           expected_num_params=n_params)
    assert layer.lora_enabled and not layer.weights[0].trainable
    assert layer.get_config()["lora_rank"] == 2


def test_dense_lora_math_and_weights_order():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    layer = layers.Dense(2, lora_rank=2, lora_alpha=6)
    layer(x)
    assert [w.name for w in layer.weights] == ["kernel", "bias", "lora_kernel_a",
                                               "lora_kernel_b"]
    assert [w.name for w in layer.trainable_weights] == ["bias", "lora_kernel_a",
                                                         "lora_kernel_b"]
    np.testing.assert_array_equal(layer.lora_kernel_b.numpy(), 0.0)  # starts as the base
    b = np.arange(4, dtype="float32").reshape(2, 2)
    layer.lora_kernel_b.assign(b)
    merged = layer.kernel.numpy() + 3.0 * layer.lora_kernel_a.numpy() @ b
    np.testing.assert_allclose(layer(x).numpy(), x @ merged + layer.bias.numpy(), rtol=1e-5)


def test_enable_lora_after_build_and_its_errors():
    layer = layers.Dense(3)
    with pytest.raises(ValueError, match="isn't yet built"):
        layer.enable_lora(2)
    layer.build((None, 4))
    layer.enable_lora(2)
    assert layer.get_config()["lora_rank"] == 2 and layer.get_config()["lora_alpha"] == 2
    with pytest.raises(ValueError, match="already enabled"):
        layer.enable_lora(2)
    constrained = layers.Dense(3, kernel_constraint="non_neg")
    constrained.build((None, 4))
    with pytest.raises(ValueError, match="incompatible with kernel constraints"):
        constrained.enable_lora(2)


def test_training_moves_only_the_factors():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 4)).astype("float32"), rng.standard_normal((32, 2))
    model = lamina.Sequential([lamina.Input((4,)), layers.Dense(2, lora_rank=1)])
    kernel = model.layers[0].kernel.numpy()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y.astype("float32"), epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)
    assert np.abs(model.layers[0].lora_kernel_b.numpy()).max() > 0


def test_weights_file_holds_the_merged_kernel(tmp_path):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype("float32")
    model = lamina.Sequential([lamina.Input((4,)), layers.Dense(3, lora_rank=2, lora_alpha=4)])
    layer = model.layers[0]
    layer.lora_kernel_b.assign(np.ones((2, 3), dtype="float32"))
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    with h5py.File(path) as f:
        stored = f["layers/dense/vars"]
        assert sorted(stored) == ["0", "1"]
        np.testing.assert_allclose(stored["0"][()], layer.kernel.numpy() + 2.0 * (
            layer.lora_kernel_a.numpy() @ layer.lora_kernel_b.numpy()), rtol=1e-6)
    model.save(str(tmp_path / "m.keras"))
    again = lamina.models.load_model(str(tmp_path / "m.keras"))
    assert again.layers[0].lora_enabled
    np.testing.assert_array_equal(again.layers[0].lora_kernel_b.numpy(), 0.0)
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda q: layers.Dense(2, quantization_config=q),
    lambda q: layers.Embedding(3, 2, quantization_config=q),
])
def test_quantization_config_none_only(make):
    assert make(None).get_config()["quantization_config"] is None
    with pytest.raises(ValueError, match="quantization_config='int8'"):
        make("int8")
