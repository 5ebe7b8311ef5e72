"""Fused recurrent primitives: forward vs a step-by-step numpy loop, float64 gradients."""

import numpy as np
import pytest

from lamina.backend import rnn
from lamina.testing import check_gradients


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _reference(kind, x, kernel, rec, bias, states, mask, go_backwards, rmask, reset_after):
    """Keras's step equations, one timestep at a time; masked steps keep the states."""
    u = rec.shape[0]
    h = states[0]
    c = states[1] if kind == "lstm" else None
    outs = []
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in steps:
        xt = x[:, t]
        hin = h if rmask is None else h * rmask
        if kind == "simple":
            h_new = np.tanh(xt @ kernel + hin @ rec + bias)
        elif kind == "lstm":
            z = xt @ kernel + hin @ rec + bias
            i, f = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u])
            g, o = np.tanh(z[:, 2 * u:3 * u]), _sigmoid(z[:, 3 * u:])
            c_new = f * c + i * g
            h_new = o * np.tanh(c_new)
        elif reset_after:
            mx, mi = xt @ kernel + bias[0], hin @ rec + bias[1]
            z = _sigmoid(mx[:, :u] + mi[:, :u])
            r = _sigmoid(mx[:, u:2 * u] + mi[:, u:2 * u])
            hh = np.tanh(mx[:, 2 * u:] + r * mi[:, 2 * u:])
            h_new = z * h + (1 - z) * hh
        else:
            mx = xt @ kernel + bias
            z = _sigmoid(mx[:, :u] + hin @ rec[:, :u])
            r = _sigmoid(mx[:, u:2 * u] + hin @ rec[:, u:2 * u])
            hh = np.tanh(mx[:, 2 * u:] + (r * hin) @ rec[:, 2 * u:])
            h_new = z * h + (1 - z) * hh
        if mask is not None:
            keep = mask[:, t:t + 1]
            h_new = np.where(keep, h_new, h)
            if kind == "lstm":
                c_new = np.where(keep, c_new, c)
        h = h_new
        if kind == "lstm":
            c = c_new
        outs.append(h)
    return np.stack(outs, axis=1), h, c


_KINDS = {
    "simple": (rnn.SimpleRNNSequence, 1, {}),
    "lstm": (rnn.LSTMSequence, 4, {}),
    "gru": (rnn.GRUSequence, 3, {"reset_after": True}),
    "gru_reset_before": (rnn.GRUSequence, 3, {"reset_after": False}),
}


def _case(kind, rng, batch=3, steps=4, features=3, units=2):
    _, k, extra = _KINDS[kind]
    x = rng.standard_normal((batch, steps, features))
    kernel = rng.standard_normal((features, k * units)) * 0.5
    rec = rng.standard_normal((units, k * units)) * 0.5
    bias_shape = (2, k * units) if extra.get("reset_after") else (k * units,)
    bias = rng.standard_normal(bias_shape) * 0.3
    n_states = 2 if kind == "lstm" else 1
    states = [rng.standard_normal((batch, units)) for _ in range(n_states)]
    return x, kernel, rec, bias, states


@pytest.mark.parametrize("kind", list(_KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_forward_and_gradients(kind, go_backwards, return_sequences, masked, dropout):
    rng = np.random.default_rng(0)
    fn, _, extra = _KINDS[kind]
    x, kernel, rec, bias, states = _case(kind, rng)
    mask = rng.random(x.shape[:2]) > 0.3 if masked else None
    rmask = (rng.random(states[0].shape) > 0.5) * 2.0 if dropout else None
    kwargs = dict(mask=mask, recurrent_mask=rmask, go_backwards=go_backwards,
                  return_sequences=return_sequences, **extra)

    packed = fn.apply(x, kernel, rec, bias, *states, **kwargs).data
    seq, h, c = _reference(kind, x, kernel, rec, bias, states, mask, go_backwards, rmask,
                           extra.get("reset_after"))
    k = x.shape[1] if return_sequences else 1
    np.testing.assert_allclose(packed[:, :k], seq if return_sequences else seq[:, -1:],
                               atol=1e-12)
    np.testing.assert_allclose(packed[:, k - 1], h, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(packed[:, k], c, atol=1e-12)

    check_gradients(lambda *a: fn.apply(*a, **kwargs), [x, kernel, rec, bias, *states])


@pytest.mark.parametrize("activation, recurrent_activation",
                         [("relu", "hard_sigmoid"), ("linear", "sigmoid"), ("tanh", "tanh")])
def test_other_fused_activations_have_correct_gradients(activation, recurrent_activation):
    rng = np.random.default_rng(1)
    x, kernel, rec, bias, states = _case("lstm", rng)
    kw = dict(activation=activation, recurrent_activation=recurrent_activation,
              return_sequences=True)
    check_gradients(lambda *a: rnn.LSTMSequence.apply(*a, **kw), [x, kernel, rec, bias, *states])
    x, kernel, rec, bias, states = _case("gru", rng)
    check_gradients(lambda *a: rnn.GRUSequence.apply(*a, **kw), [x, kernel, rec, bias, *states])
    x, kernel, rec, bias, states = _case("simple", rng)
    check_gradients(lambda *a: rnn.SimpleRNNSequence.apply(*a, activation=activation),
                    [x, kernel, rec, bias, *states])


def test_zero_initial_states_and_no_bias():
    rng = np.random.default_rng(2)
    x, kernel, rec, _, _ = _case("lstm", rng)
    zeros = np.zeros((x.shape[0], rec.shape[0]))
    got = rnn.LSTMSequence.apply(x, kernel, rec, None, None, None).data
    seq, h, c = _reference("lstm", x, kernel, rec, 0.0, [zeros, zeros], None, False, None, None)
    np.testing.assert_allclose(got[:, 0], h, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], c, atol=1e-12)
    check_gradients(lambda a, k, r: rnn.LSTMSequence.apply(a, k, r, None, None, None),
                    [x, kernel, rec])


def test_fully_masked_sequence_returns_initial_state():
    rng = np.random.default_rng(3)
    x, kernel, rec, bias, states = _case("gru", rng)
    mask = np.zeros(x.shape[:2], dtype=bool)
    got = rnn.GRUSequence.apply(x, kernel, rec, bias, *states, mask=mask).data
    np.testing.assert_array_equal(got[:, 0], states[0])


def test_float32_stays_float32():
    rng = np.random.default_rng(4)
    x, kernel, rec, bias, states = (a.astype(np.float32) if isinstance(a, np.ndarray) else
                                    [s.astype(np.float32) for s in a]
                                    for a in _case("lstm", rng))
    out = rnn.LSTMSequence.apply(x, kernel, rec, bias, *states, return_sequences=True)
    assert out.dtype == "float32"
    seq, _, _ = _reference("lstm", x.astype(np.float64), kernel, rec, bias, states, None,
                           False, None, None)
    np.testing.assert_allclose(out.data[:, :-1], seq, atol=1e-5)
