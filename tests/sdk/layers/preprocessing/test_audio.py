"""MelSpectrogram, STFTSpectrogram and the STFT initializer against Keras 3.15.1 (jax)."""

import json
import os

import numpy as np
import pytest

from lamina import initializers, layers
from lamina.initializers_stft import get_window
from lamina.testing import run_layer_test

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "preprocessing",
                     "numeric_fixtures.json")
with open(_PATH, encoding="utf-8") as _f:
    FIXTURES = json.load(_f)
SIGNAL = np.array(FIXTURES["audio_signal"], dtype="float32")
STFT_INPUT = np.array(FIXTURES["stft_input"], dtype="float32")


def _config(config):
    return {k: v for k, v in config.items() if k not in ("name", "dtype")}


@pytest.mark.parametrize("case", FIXTURES["mel_spectrogram"], ids=lambda c: str(c["kwargs"]))
def test_mel_spectrogram_matches_keras(case):
    layer = layers.MelSpectrogram(**case["kwargs"])
    out = layer(SIGNAL).numpy()
    np.testing.assert_allclose(out, np.array(case["output"]), rtol=1e-5, atol=1e-4)
    assert layer.compute_output_shape(SIGNAL.shape) == out.shape
    assert _config(layer.get_config()) == _config(case["config"])


@pytest.mark.parametrize("case", FIXTURES["stft_spectrogram"], ids=lambda c: str(c["kwargs"]))
def test_stft_spectrogram_matches_keras(case):
    layer = layers.STFTSpectrogram(**case["kwargs"])
    x = STFT_INPUT.transpose(0, 2, 1) if case["kwargs"].get("data_format") == \
        "channels_first" else STFT_INPUT
    out = layer(x).numpy()
    expected = np.array(case["output"])
    if case["kwargs"]["mode"] == "angle":
        # Where the imaginary part is ~0 with a negative real part, float noise picks
        # +pi or -pi: compare angles on the circle.
        out = np.angle(np.exp(1j * (out - expected)))
        expected = np.zeros_like(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    assert layer.compute_output_shape(x.shape) == out.shape
    assert len(layer.weights) == case["num_weights"]
    assert _config(layer.get_config()) == _config(case["config"])


@pytest.mark.parametrize("case", FIXTURES["stft_initializer"], ids=lambda c: str(c["kwargs"]))
def test_stft_initializer_matches_keras(case):
    init = initializers.STFT(**case["kwargs"])
    np.testing.assert_allclose(init(tuple(case["shape"])), np.array(case["output"]),
                               atol=2e-6)
    assert init.get_config() == case["config"]
    assert isinstance(initializers.get("stft"), initializers.STFTInitializer)


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "bartlett", "boxcar"])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_match_numpy(name, periodic):
    n = 9
    reference = {"hann": np.hanning, "hamming": np.hamming, "blackman": np.blackman,
                 "bartlett": np.bartlett, "boxcar": np.ones}[name]
    expected = reference(n + 1)[:n] if periodic else reference(n)
    np.testing.assert_allclose(get_window(name, n, periodic), expected, atol=1e-12)


def test_stft_spectrogram_layer_test_trains_its_kernels():
    run_layer_test(layers.STFTSpectrogram, {"mode": "magnitude", "frame_length": 8,
                                            "frame_step": 4},
                   input_shape=(2, 24, 1), expected_output_shape=(2, 5, 5),
                   expected_num_trainable_weights=2, expected_num_non_trainable_weights=0,
                   expected_num_params=80, gradient_rtol=1e-4)


def test_mel_spectrogram_layer_test():
    run_layer_test(layers.MelSpectrogram, {"fft_length": 64, "sequence_stride": 16,
                                           "num_mel_bins": 8, "sampling_rate": 8000},
                   input_shape=(2, 128), expected_output_shape=(2, 8, 9),
                   expected_num_trainable_weights=0, run_training_check=False,
                   run_gradient_check=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "bad"}, "mode=bad"),
    ({"frame_length": 8, "frame_step": 9}, "frame_step=9"),
    ({"frame_length": 8, "fft_length": 4}, "fft_length=4"),
    ({"padding": "causal"}, "padding=causal"),
    ({"scaling": "bad"}, "scaling=bad"),
    ({"window": "nope"}, "window='nope'"),
])
def test_stft_spectrogram_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.STFTSpectrogram(**kwargs)


def test_mel_spectrogram_errors():
    with pytest.raises(ValueError, match="sequence_length`=64"):
        layers.MelSpectrogram(fft_length=32, sequence_length=64)
    with pytest.raises(ValueError, match="window=blackman"):
        layers.MelSpectrogram(window="blackman")


def test_stft_spectrogram_needs_rank_3_input():
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=2"):
        layers.STFTSpectrogram(frame_length=8)(np.zeros((2, 32), "float32"))
