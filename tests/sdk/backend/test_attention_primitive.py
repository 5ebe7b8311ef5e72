"""The fused attention primitive (``lamina.backend.attention``): forward against a float64
numpy reference, gradients against float64 central differences, packed == unpacked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina.backend import Tensor
from lamina.backend import attention as att
from lamina.backend.threads import get_thread_policy, set_thread_policy
from lamina.testing import check_gradients

RNG = np.random.default_rng(11)


# Every test on the numpy path and on the compiled kernels (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("kernels")
B, T, S, H, D, DV = 2, 5, 4, 3, 4, 6


def reference(q, k, v, mask=None, scale=None, drop=None):
    """Keras's arithmetic: scores + (1 - mask) * -1e9, softmax, (dropout), @ v."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("bthd,bshd->bhts", q * scale, k)
    if mask is not None:
        mask = np.asarray(mask)
        s = s + (1.0 - (mask[:, None] if mask.ndim == 3 else mask)) * -1e9
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    if drop is not None:
        p = p * drop
    return np.einsum("bhts,bshd->bthd", p, v)


def qkv(t=T, s=S, dv=DV):
    return (RNG.standard_normal((B, t, H, D)), RNG.standard_normal((B, s, H, D)),
            RNG.standard_normal((B, s, H, dv)))


RANDOM_MASK = RNG.random((B, T, S)) > 0.35
RANDOM_MASK[:, :, 0] = True
ROW_MASKED = RANDOM_MASK.copy()
ROW_MASKED[1, 2] = False  # a fully masked row: uniform over its scores, as in Keras
CAUSAL = np.tril(np.ones((T, T), bool))[None]
HEAD_MASK = RNG.random((B, H, T, S)) > 0.3
DROP = (RNG.random((B, H, T, S)) > 0.4) / 0.6

CASES = [
    pytest.param({}, S, id="plain"),
    pytest.param({"mask": RANDOM_MASK}, S, id="mask"),
    pytest.param({"mask": ROW_MASKED}, S, id="mask-full-row"),
    pytest.param({"mask": RANDOM_MASK[:1]}, S, id="mask-batch-1"),
    pytest.param({"mask": HEAD_MASK}, S, id="mask-per-head"),
    pytest.param({"mask": CAUSAL}, T, id="causal"),
    pytest.param({"scale": 0.3}, S, id="scale"),
    pytest.param({"dropout_mask": DROP, "mask": RANDOM_MASK}, S, id="dropout"),
]


@pytest.mark.parametrize("kwargs, s", CASES)
def test_forward_matches_reference(kwargs, s):
    q, k, v = qkv(s=s)
    got = att.attention(Tensor(q), Tensor(k), Tensor(v), **kwargs).data
    ref = reference(q, k, v, kwargs.get("mask"), kwargs.get("scale"),
                    kwargs.get("dropout_mask"))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs, s", CASES)
def test_gradients_central_differences(kwargs, s):
    q, k, v = qkv(s=s)
    tol = {}
    if kwargs.get("mask") is ROW_MASKED:
        # The masked row's scores sit near -1e9, where a float64 step of 1e-6 is only
        # ~8 ulps: central differences need a large step there.
        tol = {"eps": 1e-2, "rtol": 1e-2}
    check_gradients(lambda a, b, c: att.attention(a, b, c, **kwargs), [q, k, v], **tol)


@pytest.mark.parametrize("kwargs", [{}, {"mask": CAUSAL}, {"mask": RANDOM_MASK[:, :, :1]
                                                             .repeat(T, axis=2)}],
                         ids=["plain", "causal", "mask"])
def test_packed_gradients_central_differences(kwargs):
    packed = RNG.standard_normal((B, T, H * (2 * D + DV)))
    check_gradients(lambda x: att.packed_attention(x, H, D, DV, **kwargs), [packed])


def test_packed_equals_unpacked_and_gradients_agree():
    from lamina.backend import Variable, autodiff

    packed = Variable(RNG.standard_normal((B, T, H * (2 * D + DV))))
    parts = np.split(packed.data, [H * D, 2 * H * D], axis=-1)
    q, k, v = (Variable(p.reshape(B, T, H, -1).copy()) for p in parts)
    weights = RNG.standard_normal((B, T, H, DV))
    out_p = att.packed_attention(packed, H, D, DV, mask=CAUSAL)
    out_u = att.attention(q, k, v, mask=CAUSAL)
    np.testing.assert_array_equal(out_p.data, out_u.data)
    (gp,) = autodiff.gradients(out_p, [packed], output_gradient=weights)
    gq, gk, gv = autodiff.gradients(out_u, [q, k, v], output_gradient=weights)
    np.testing.assert_array_equal(gp, np.concatenate(
        [g.reshape(B, T, -1) for g in (gq, gk, gv)], axis=-1))


@pytest.mark.parametrize("part_bytes", [1, 4 * 40 * 40 * 4], ids=["heads", "rows"])
def test_results_do_not_depend_on_threads_or_parts(monkeypatch, part_bytes):
    """Parts of one head, or of whole batch rows, on two threads change nothing (bit for
    bit): forward and gradients, with a per-head mask."""
    from lamina.backend import Variable, autodiff

    q, k, v = (np.tile(x.astype(np.float32), (4, 1, 1, 1)) for x in qkv(t=40, s=40))
    mask = RNG.random((8, H, 40, 40)) > 0.2
    weights = RNG.standard_normal((8, 40, H, DV)).astype(np.float32)

    def run():
        inputs = [Variable(x, dtype="float32") for x in (q, k, v)]
        out = att.attention(*inputs, mask=mask)
        return [out.data, *autodiff.gradients(out, inputs, output_gradient=weights)]

    base = run()
    monkeypatch.setattr(att, "PART_BYTES", part_bytes)
    assert len(att._parts(8, H, 40, 40, 4)) == (8 * H if part_bytes == 1 else 8)
    previous = get_thread_policy()
    try:
        set_thread_policy(2)
        cut = run()
    finally:
        set_thread_policy(previous)
    for a, b in zip(base, cut):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_float32_stays_float32():
    q, k, v = (x.astype(np.float32) for x in qkv())
    out = att.attention(Tensor(q), Tensor(k), Tensor(v), mask=RANDOM_MASK)
    assert out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, reference(q.astype(np.float64), k, v, RANDOM_MASK),
                               rtol=1e-5, atol=1e-6)


def test_bad_shapes_are_named():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"query.shape=\(2, 5, 3, 4\), key.shape=\(2, 4, 3\)"):
        att.attention(Tensor(q), Tensor(k[..., 0]), Tensor(v))
    with pytest.raises(ValueError, match="do not agree"):
        att.attention(Tensor(q), Tensor(k[:, :, :2]), Tensor(v[:, :, :2]))
    with pytest.raises(ValueError, match=r"Received: shape=\(2, 5, 7\)"):
        att.packed_attention(Tensor(np.zeros((B, T, 7))), H, D)
