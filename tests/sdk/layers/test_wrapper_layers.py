"""Wrapper (the base of TimeDistributed, Bidirectional, SpectralNormalization) and
SpectralNormalization; its numerics against Keras are in test_keras_layer_fixtures.py."""

import h5py
import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test


class _SpectralDense(layers.SpectralNormalization):
    """Builds its own Dense, so run_layer_test can construct it from plain kwargs."""

    def __init__(self, units=3, power_iterations=1, **kwargs):
        kwargs.pop("layer", None)
        super().__init__(layers.Dense(units, dtype=kwargs.get("dtype")),
                         power_iterations=power_iterations, **kwargs)
        self.units = units

    def get_config(self):
        config = super().get_config()
        config.pop("layer")
        return {**config, "units": self.units}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def test_run_layer_test():
    layer = run_layer_test(_SpectralDense, {"units": 3, "power_iterations": 2},
                           input_shape=(4, 5), expected_output_shape=(4, 3),
                           expected_num_trainable_weights=2,
                           expected_num_non_trainable_weights=1, expected_num_params=18 + 3)
    assert [w.name for w in layer.weights] == ["kernel", "vector_u", "bias"]


def test_training_call_makes_the_spectral_norm_one():
    rng = np.random.default_rng(0)
    layer = layers.SpectralNormalization(layers.Dense(4), power_iterations=30)
    x = rng.standard_normal((3, 6)).astype("float32")
    layer(x)
    before = layer.kernel.numpy()
    layer(x, training=True)
    sigma = np.linalg.svd(before, compute_uv=False)[0]
    np.testing.assert_allclose(layer.kernel.numpy(), before / sigma, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.svd(layer.kernel.numpy(), compute_uv=False)[0], 1.0,
                               rtol=1e-4)
    frozen = layer.kernel.numpy()
    layer(x)  # inference leaves the kernel alone
    np.testing.assert_array_equal(layer.kernel.numpy(), frozen)


def test_wraps_embeddings_and_refuses_kernelless_layers():
    layer = layers.SpectralNormalization(layers.Embedding(5, 3))
    assert layer(np.array([[1, 2]]), training=True).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="no attribute 'kernel' nor 'embeddings'"):
        layers.SpectralNormalization(layers.ReLU())(np.ones((2, 3)))
    with pytest.raises(ValueError, match="power_iterations=0"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0)


def test_weights_file_layout_matches_keras(tmp_path):
    # Keras 3.15.1 writes the wrapped kernel and vector_u in the wrapper's vars and the
    # Dense's kernel and bias under "layer".
    model = lamina.Sequential([lamina.Input((4,)),
                               layers.SpectralNormalization(layers.Dense(3))])
    path = str(tmp_path / "sn.weights.h5")
    model.save_weights(path)
    with h5py.File(path) as f:
        names = []
        f.visit(names.append)
    assert "layers/spectral_normalization/vars/1" in names
    assert "layers/spectral_normalization/layer/vars/1" in names
    again = lamina.Sequential([lamina.Input((4,)),
                               layers.SpectralNormalization(layers.Dense(3))])
    again.load_weights(path)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


class Doubler(layers.Wrapper):
    def call(self, inputs):
        return self.layer(inputs) * 2.0


def test_user_wrapper_and_config_round_trip():
    wrapped = Doubler(layers.Dense(2, kernel_initializer="ones"))
    out = wrapped(np.ones((1, 3), "float32"))
    np.testing.assert_allclose(out.numpy(), [[6.0, 6.0]])
    assert len(wrapped.weights) == 2
    again = Doubler.from_config(wrapped.get_config())
    assert type(again.layer) is layers.Dense and again.layer.units == 2
    with pytest.raises(ValueError, match="isn't a supported layer type"):
        Doubler("dense")


def test_time_distributed_and_bidirectional_are_wrappers():
    assert issubclass(layers.TimeDistributed, layers.Wrapper)
    assert issubclass(layers.Bidirectional, layers.Wrapper)
    bi = layers.Bidirectional(layers.LSTM(2))
    assert not hasattr(bi, "layer")  # as in Keras: forward_layer and backward_layer
