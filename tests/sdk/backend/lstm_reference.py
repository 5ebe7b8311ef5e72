"""Keras's LSTM step equations in float64 numpy: the reference of the fused LSTM tests."""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference(x, kernel, rec, bias, h, c, mask=None, rmask=None, go_backwards=False):
    """Keras's LSTM step equations one step at a time; masked steps keep the states."""
    u = rec.shape[0]
    outs = []
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in steps:
        z = x[:, t] @ kernel + (h if rmask is None else h * rmask) @ rec + bias
        i, f = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u])
        g, o = np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if mask is not None:
            keep = mask[:, t:t + 1]
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        h, c = h_new, c_new
        outs.append(h)
    return np.stack(outs, axis=1), h, c
