"""Fourier ops against ``numpy.fft``, ``stft``/``istft`` against Keras 3.15.1 fixtures
(tests/fixtures/ops/make_fixtures.py), gradients against float64 central differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import ops
from lamina.ops import signal
from lamina.testing import check_gradients

FIX = np.load(Path(__file__).parents[2] / "fixtures/ops/ops_fixtures.npz", allow_pickle=False)
RNG = np.random.default_rng(9)


def rn(*shape):
    return RNG.standard_normal(shape)


def _cat(pair):
    return ops.concatenate([ops.reshape(p, (-1,)) for p in pair])


def _np_cat(z):
    return np.concatenate([np.real(z).ravel(), np.imag(z).ravel()])


CASES = [
    pytest.param(lambda a, b: _cat(signal.fft((a, b))),
                 lambda a, b: _np_cat(np.fft.fft(a + 1j * b)), [rn(2, 6), rn(2, 6)], id="fft"),
    pytest.param(lambda a, b: _cat(signal.fft2((a, b))),
                 lambda a, b: _np_cat(np.fft.fft2(a + 1j * b)), [rn(2, 3, 4), rn(2, 3, 4)],
                 id="fft2"),
    pytest.param(lambda a, b: _cat(signal.ifft2((a, b))),
                 lambda a, b: _np_cat(np.fft.ifft2(a + 1j * b)), [rn(3, 5), rn(3, 5)],
                 id="ifft2"),
    pytest.param(lambda a: _cat(signal.rfft(a)), lambda a: _np_cat(np.fft.rfft(a)), [rn(2, 7)],
                 id="rfft"),
    pytest.param(lambda a: _cat(signal.rfft(a, fft_length=10)),
                 lambda a: _np_cat(np.fft.rfft(a, 10)), [rn(2, 7)], id="rfft[pad]"),
    pytest.param(lambda a: _cat(signal.rfft(a, fft_length=4)),
                 lambda a: _np_cat(np.fft.rfft(a, 4)), [rn(7)], id="rfft[crop]"),
    pytest.param(lambda a, b: signal.irfft((a, b)), lambda a, b: np.fft.irfft(a + 1j * b),
                 [rn(2, 5), rn(2, 5)], id="irfft"),
    pytest.param(lambda a, b: signal.irfft((a, b), fft_length=7),
                 lambda a, b: np.fft.irfft(a + 1j * b, 7), [rn(5), rn(5)], id="irfft[odd]"),
    pytest.param(lambda a, b: signal.irfft((a, b), fft_length=14),
                 lambda a, b: np.fft.irfft(a + 1j * b, 14), [rn(5), rn(5)], id="irfft[pad]"),
    pytest.param(lambda a: signal.extract_sequences(a, 4, 3),
                 lambda a: np.stack([a[..., i:i + 4] for i in range(0, 7, 3)], -2),
                 [rn(2, 11)], id="extract_sequences"),
]


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_forward_matches_numpy(fn, ref, inputs):
    out = fn(*[np.asarray(a, "float32") for a in inputs])
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_gradient_matches_central_differences(fn, ref, inputs):
    assert check_gradients(fn, inputs) <= 1e-6


STFT_CASES = {
    "a": dict(sequence_length=16, sequence_stride=4, fft_length=16),
    "b": dict(sequence_length=12, sequence_stride=5, fft_length=16, window="hamming",
              center=False),
    "c": dict(sequence_length=16, sequence_stride=8, fft_length=32, window=None),
    "d": dict(sequence_length=16, sequence_stride=6, fft_length=20, window=FIX["stft_window"],
              center=True),
}


@pytest.mark.parametrize("key", sorted(STFT_CASES))
def test_stft_and_istft_match_keras(key):
    kw = STFT_CASES[key]
    real, imag = ops.stft(FIX["stft_x"], **kw)
    assert real.dtype == "float32"
    np.testing.assert_allclose(real.data, FIX[f"stft_{key}_real"], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(imag.data, FIX[f"stft_{key}_imag"], rtol=1e-5, atol=2e-6)
    spectrum = (FIX[f"stft_{key}_real"], FIX[f"stft_{key}_imag"])
    np.testing.assert_allclose(ops.istft(spectrum, **kw).data, FIX[f"istft_{key}"],
                               rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(ops.istft(spectrum, length=50, **kw).data,
                               FIX[f"istft_{key}_len"], rtol=1e-5, atol=2e-6)


def test_stft_round_trip_and_gradients():
    x = rn(2, 40)
    kw = dict(sequence_length=8, sequence_stride=2, fft_length=8)
    back = signal.istft(signal.stft(x.astype("float32"), **kw), length=40, **kw)
    np.testing.assert_allclose(back.data, x, rtol=1e-4, atol=1e-5)
    assert check_gradients(lambda s: _cat(signal.stft(s, 8, 3, 10, window="hamming")),
                           [rn(24)]) <= 1e-6
    assert check_gradients(
        lambda a, b: signal.istft((a, b), 8, 4, 8, center=False), [rn(4, 5), rn(4, 5)]) <= 1e-6


def test_argument_errors():
    with pytest.raises(ValueError, match="fft_length=8"):
        signal.stft(rn(20).astype("float32"), 16, 4, 8)
    with pytest.raises(ValueError, match="window=kaiser"):
        signal.stft(rn(20).astype("float32"), 8, 4, 8, window="kaiser")
    with pytest.raises(TypeError, match="int64"):
        signal.stft(np.arange(20), 8, 4, 8)
    with pytest.raises(ValueError, match="real and imaginary"):
        signal.fft(rn(4))


def test_view_as_complex_and_real():
    pairs = np.array([[1.0, 2.0], [3.0, 4.0]])
    z = ops.view_as_complex(pairs)
    assert z.dtype == "complex64"
    np.testing.assert_array_equal(z.data, [1 + 2j, 3 + 4j])
    np.testing.assert_array_equal(ops.view_as_real(z).data, pairs)
    with pytest.raises(ValueError, match="size 2"):
        ops.view_as_complex(np.ones((2, 3)))


def test_signal_ops_inside_functional_models():
    inputs = lamina.Input((64,))
    real, imag = ops.stft(inputs, 16, 4, 16)
    model = lamina.Model(inputs, [real, imag, ops.rfft(inputs, 8)[0]])
    got = model.predict(FIX["stft_x"], verbose=0)
    np.testing.assert_allclose(got[0], FIX["stft_a_real"], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(got[1], FIX["stft_a_imag"], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(got[2], np.fft.rfft(FIX["stft_x"], 8).real, rtol=1e-5,
                               atol=2e-6)
