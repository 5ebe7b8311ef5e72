"""Convolution and pooling primitives against slow direct loops and central differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lamina.backend import conv, pooling
from lamina.testing import check_gradients


def _same_pads(length, k, s, d):
    span = d * (k - 1) + 1
    out = -(-length // s)
    total = max((out - 1) * s + span - length, 0)
    return total // 2, total - total // 2


def _resolve(spatial, ksize, strides, dilation, padding):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "causal":
        return [(d * (k - 1), 0) for k, d in zip(ksize, dilation)]
    return [_same_pads(n, k, s, d) for n, k, s, d in zip(spatial, ksize, strides, dilation)]


def ref_conv(x, kernel, strides, padding, dilation, groups=1):
    """Direct loops over every output position and kernel offset."""
    ksize = kernel.shape[:-2]
    cg, filters = kernel.shape[-2:]
    pads = _resolve(x.shape[1:-1], ksize, strides, dilation, padding)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    out_shape = [(n - d * (k - 1) - 1) // s + 1
                 for n, k, s, d in zip(xp.shape[1:-1], ksize, strides, dilation)]
    out = np.zeros((x.shape[0], *out_shape, filters))
    fg = filters // groups
    for b in range(x.shape[0]):
        for pos in itertools.product(*map(range, out_shape)):
            for off in itertools.product(*map(range, ksize)):
                idx = tuple(p * s + o * d for p, o, s, d in zip(pos, off, strides, dilation))
                for g in range(groups):
                    pixel = xp[(b, *idx)][g * cg:(g + 1) * cg]
                    weights = kernel[off][:, g * fg:(g + 1) * fg]
                    out[(b, *pos)][g * fg:(g + 1) * fg] += pixel @ weights
    return out


def ref_conv_transpose(x, kernel, strides, padding, dilation, output_padding=None):
    """JAX's definition used by Keras: dilate the input by the stride, pad, flip, correlate."""
    ksize = kernel.shape[:-2]
    lhs = np.zeros((x.shape[0], *((n - 1) * s + 1 for n, s in zip(x.shape[1:-1], strides)),
                    x.shape[-1]))
    lhs[(slice(None), *(slice(None, None, s) for s in strides), slice(None))] = x
    pads = []
    for i, (k, s, d) in enumerate(zip(ksize, strides, dilation)):
        span = (k - 1) * d + 1
        op = None if output_padding is None else output_padding[i]
        if padding == "valid":
            op = max(span, s) - span if op is None else op
            pads.append((span - 1, span - 1 + op))
        else:
            pad_len = s + span - 2 if op is None else span + span % 2 - 2 + op
            left = min(pad_len // 2 + pad_len % 2, span - 1)
            pads.append((left, pad_len - left))
    flipped = kernel[tuple(slice(None, None, -1) for _ in ksize)].swapaxes(-1, -2)
    lhs = np.pad(lhs, [(0, 0), *pads, (0, 0)])
    return ref_conv(lhs, flipped, (1,) * len(ksize), "valid", dilation)


def ref_pool(x, pool, strides, padding, mode):
    """Direct loops over every output position; padded cells are ignored."""
    pads = _resolve(x.shape[1:-1], pool, strides, (1,) * len(pool), padding)
    out_shape = [(n + lo + hi - k) // s + 1
                 for n, (lo, hi), k, s in zip(x.shape[1:-1], pads, pool, strides)]
    out = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
    for pos in itertools.product(*map(range, out_shape)):
        index = tuple(slice(max(p * s - lo, 0), min(p * s - lo + k, n))
                      for p, s, (lo, _), k, n in zip(pos, strides, pads, pool, x.shape[1:-1]))
        window = x[(slice(None), *index, slice(None))].reshape(x.shape[0], -1, x.shape[-1])
        out[(slice(None), *pos)] = window.max(1) if mode == "max" else window.mean(1)
    return out


def run_conv(x, kernel, bias=None, strides=None, padding="valid", dilation=None, groups=1,
             relu=False):
    n = np.ndim(x) - 2
    strides, dilation = strides or (1,) * n, dilation or (1,) * n
    pads = [conv.conv_padding(length, k, s, padding, d) for length, k, s, d in zip(
        np.shape(x)[1:-1], np.shape(kernel)[:-2], strides, dilation)]
    return conv.Conv.apply(x, kernel, bias, strides=strides, dilation=dilation, pads=pads,
                           groups=groups, relu=relu)


def run_conv_transpose(x, kernel, bias=None, strides=None, padding="valid", dilation=None,
                       output_padding=None):
    n = np.ndim(x) - 2
    strides, dilation = strides or (1,) * n, dilation or (1,) * n
    ops_ = output_padding or (None,) * n
    ksize = np.shape(kernel)[:-2]
    lengths = [conv.deconv_output_length(length, k, s, padding, op, d) for length, k, s, op, d
               in zip(np.shape(x)[1:-1], ksize, strides, ops_, dilation)]
    before = [conv.deconv_padding_before(k, s, padding, op, d)
              for k, s, op, d in zip(ksize, strides, ops_, dilation)]
    return conv.ConvTranspose.apply(x, kernel, bias, strides=strides, dilation=dilation,
                                    pads_before=before, out_lengths=lengths)


def run_pool(x, pool, strides, padding, mode):
    pads = [conv.conv_padding(length, k, s, padding) for length, k, s in zip(
        np.shape(x)[1:-1], pool, strides)]
    fn = pooling.MaxPool if mode == "max" else pooling.AvgPool
    return fn.apply(x, pool=pool, strides=strides, pads=pads)


CONV_CASES = [
    # (input shape, kernel shape, strides, padding, dilation, groups)
    ((2, 6, 7, 3), (3, 3, 3, 4), (1, 1), "valid", (1, 1), 1),
    ((2, 6, 7, 3), (3, 3, 3, 4), (2, 2), "valid", (1, 1), 1),
    ((2, 6, 7, 3), (3, 3, 3, 4), (1, 1), "same", (1, 1), 1),
    ((2, 6, 7, 3), (2, 2, 3, 4), (1, 1), "same", (1, 1), 1),
    ((2, 6, 7, 3), (4, 3, 3, 2), (2, 3), "same", (1, 1), 1),
    ((2, 7, 7, 2), (3, 2, 2, 3), (1, 1), "same", (2, 2), 1),
    ((2, 7, 8, 2), (3, 3, 2, 3), (1, 1), "valid", (2, 1), 1),
    ((2, 5, 6, 4), (3, 3, 2, 6), (1, 1), "same", (1, 1), 2),
    ((2, 5, 6, 4), (2, 2, 1, 8), (2, 1), "valid", (1, 1), 4),
    ((2, 5, 5, 3), (1, 1, 3, 4), (1, 1), "valid", (1, 1), 1),
    ((1, 5, 6, 16), (3, 2, 16, 2), (2, 1), "same", (1, 1), 1),
    ((2, 9, 3), (3, 3, 4), (1,), "causal", (1,), 1),
    ((2, 9, 3), (2, 3, 4), (1,), "causal", (3,), 1),
    ((2, 9, 3), (4, 3, 2), (2,), "same", (1,), 1),
    ((1, 4, 4, 3, 2), (2, 2, 2, 2, 3), (1, 2, 1), "same", (1, 1, 1), 1),
]


@pytest.mark.parametrize("xs, ks, strides, padding, dilation, groups", CONV_CASES)
def test_conv_forward_matches_direct_loops(xs, ks, strides, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    kernel = rng.standard_normal(ks).astype(np.float32)
    bias = rng.standard_normal(ks[-1]).astype(np.float32)
    got = run_conv(x, kernel, bias, strides, padding, dilation, groups).data
    want = ref_conv(x.astype(np.float64), kernel.astype(np.float64), strides, padding,
                    dilation, groups) + bias
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    relu = run_conv(x, kernel, bias, strides, padding, dilation, groups, relu=True).data
    np.testing.assert_allclose(relu, np.maximum(want, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xs, ks, strides, padding, dilation, groups", CONV_CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_conv_gradients(xs, ks, strides, padding, dilation, groups, relu):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs)
    kernel = rng.standard_normal(ks)
    bias = rng.standard_normal(ks[-1])
    check_gradients(lambda a, k, b: run_conv(a, k, b, strides, padding, dilation, groups, relu),
                    [x, kernel, bias])


TRANSPOSE_CASES = [
    # (input shape, kernel shape (k..., filters, in), strides, padding, dilation, output_padding)
    ((2, 4, 5, 3), (3, 3, 2, 3), (1, 1), "valid", (1, 1), None),
    ((2, 4, 5, 3), (3, 3, 2, 3), (2, 2), "valid", (1, 1), None),
    ((2, 4, 5, 3), (3, 3, 2, 3), (2, 2), "same", (1, 1), None),
    ((2, 4, 5, 3), (2, 2, 2, 3), (2, 2), "same", (1, 1), None),
    ((2, 4, 5, 3), (4, 3, 2, 3), (2, 3), "same", (1, 1), (1, 2)),
    ((2, 4, 5, 3), (2, 3, 2, 3), (3, 2), "valid", (1, 1), (2, 0)),
    ((2, 4, 4, 3), (3, 3, 2, 3), (1, 1), "same", (2, 2), None),
    ((2, 3, 3, 2), (2, 2, 3, 2), (3, 3), "valid", (1, 1), None),
    ((2, 5, 2), (3, 4, 2), (2,), "same", (1,), None),
]


@pytest.mark.parametrize("xs, ks, strides, padding, dilation, output_padding", TRANSPOSE_CASES)
def test_conv_transpose_forward_matches_jax_definition(xs, ks, strides, padding, dilation,
                                                      output_padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(np.float32)
    kernel = rng.standard_normal(ks).astype(np.float32)
    got = run_conv_transpose(x, kernel, None, strides, padding, dilation, output_padding).data
    want = ref_conv_transpose(x.astype(np.float64), kernel.astype(np.float64), strides,
                              padding, dilation, output_padding)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xs, ks, strides, padding, dilation, output_padding", TRANSPOSE_CASES)
def test_conv_transpose_gradients(xs, ks, strides, padding, dilation, output_padding):
    rng = np.random.default_rng(3)
    x, kernel, bias = rng.standard_normal(xs), rng.standard_normal(ks), rng.standard_normal(ks[-2])
    check_gradients(lambda a, k, b: run_conv_transpose(a, k, b, strides, padding, dilation,
                                                       output_padding), [x, kernel, bias])


def test_conv_transpose_is_the_input_gradient_of_conv():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 8, 3))
    kernel = rng.standard_normal((3, 3, 3, 5))
    g = rng.standard_normal((2, 4, 4, 5))
    from lamina.backend import Variable, gradients

    xv = Variable(x, dtype="float64")
    out = run_conv(xv, kernel, None, (2, 2), "same")
    (gx,) = gradients(out, [xv], output_gradient=g)
    before = [conv.conv_padding(n, 3, 2, "same")[0] for n in (7, 8)]
    t = conv.ConvTranspose.apply(g, kernel, None, strides=(2, 2), dilation=(1, 1),
                                 pads_before=before, out_lengths=(7, 8)).data
    np.testing.assert_allclose(t, gx, rtol=1e-12, atol=1e-12)


POOL_CASES = [
    # (input shape, pool, strides, padding)
    ((2, 6, 6, 3), (2, 2), (2, 2), "valid"),
    ((2, 7, 5, 3), (2, 2), (2, 2), "valid"),
    ((2, 7, 5, 3), (2, 2), (2, 2), "same"),
    ((2, 7, 6, 2), (3, 3), (1, 1), "valid"),
    ((2, 7, 6, 2), (3, 3), (2, 2), "same"),
    ((2, 7, 6, 2), (2, 3), (1, 2), "same"),
    ((2, 7, 6, 2), (2, 2), (3, 3), "valid"),
    ((2, 9, 3), (2,), (2,), "valid"),
    ((2, 9, 3), (3,), (1,), "same"),
    ((2, 9, 3), (4,), (3,), "same"),
]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("xs, pool, strides, padding", POOL_CASES)
def test_pool_forward_matches_direct_loops(xs, pool, strides, padding, mode):
    x = np.random.default_rng(5).standard_normal(xs).astype(np.float32)
    got = run_pool(x, pool, strides, padding, mode).data
    np.testing.assert_allclose(got, ref_pool(x.astype(np.float64), pool, strides, padding, mode),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("xs, pool, strides, padding", POOL_CASES)
def test_pool_gradients(xs, pool, strides, padding, mode):
    # Distinct values a little apart, so that no finite-difference step changes an argmax.
    x = np.random.default_rng(6).permutation(np.prod(xs)).reshape(xs) * 0.01
    check_gradients(lambda a: run_pool(a, pool, strides, padding, mode), [x])


def test_max_pool_gradient_goes_to_the_first_maximum_of_a_tie():
    x = np.zeros((1, 2, 2, 1), np.float32)
    out = pooling.MaxPool.apply(np.zeros_like(x), pool=(2, 2), strides=(2, 2))
    assert out.data.shape == (1, 1, 1, 1)
    from lamina.backend import Variable, gradients

    xv = Variable(x)
    (gx,) = gradients(pooling.MaxPool.apply(xv, pool=(2, 2), strides=(2, 2)), [xv])
    np.testing.assert_array_equal(gx.ravel(), [1, 0, 0, 0])


@pytest.mark.parametrize("length, k, s, padding, d, expected", [
    (28, 3, 1, "valid", 1, 26), (28, 3, 1, "same", 1, 28), (28, 3, 2, "same", 1, 14),
    (7, 2, 2, "valid", 1, 3), (7, 2, 2, "same", 1, 4), (9, 3, 1, "causal", 2, 9),
    (10, 3, 1, "valid", 2, 6), (None, 3, 1, "valid", 1, None),
])
def test_conv_output_length(length, k, s, padding, d, expected):
    assert conv.conv_output_length(length, k, s, padding, d) == expected


def test_same_padding_puts_the_extra_row_at_the_end():
    assert conv.conv_padding(6, 2, 1, "same") == (0, 1)
    assert conv.conv_padding(6, 4, 1, "same") == (1, 2)
    assert conv.conv_padding(7, 3, 2, "same") == (1, 1)
    assert conv.conv_padding(5, 3, 1, "causal", dilation=2) == (4, 0)


def test_max_pool_routes_ties_to_the_first_maximum_in_row_major_order():
    # Values from a small set, so that most windows hold ties, some across both rows.
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (3, 6, 8, 2)).astype(np.float32)
    g = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    from lamina.backend import Variable, gradients

    xv = Variable(x)
    (gx,) = gradients(pooling.MaxPool.apply(xv, pool=(2, 2), strides=(2, 2)), [xv],
                      output_gradient=g)
    want = np.zeros_like(x)
    for b, i, j, c in itertools.product(*map(range, g.shape)):
        window = x[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c]
        di, dj = np.unravel_index(np.argmax(window), (2, 2))  # argmax: the first maximum
        want[b, 2 * i + di, 2 * j + dj, c] = g[b, i, j, c]
    np.testing.assert_array_equal(gx, want)


def test_max_pool_over_more_than_256_offsets():
    x = np.random.default_rng(8).permutation(2 * 18 * 17 * 2).reshape(2, 18, 17, 2) * 0.01
    np.testing.assert_allclose(run_pool(x, (17, 17), (1, 1), "valid", "max").data,
                               ref_pool(x, (17, 17), (1, 1), "valid", "max"))
    check_gradients(lambda a: run_pool(a, (17, 17), (1, 1), "valid", "max"), [x])


@pytest.mark.parametrize("batch, sample_bytes, part_bytes, want", [
    (128, 100, 1 << 20, [(0, 128)]),                  # fits one part
    (128, 170_000, 6 << 20, [(0, 32), (32, 64), (64, 96), (96, 128)]),  # 4 of <= 37
    (128, 113_000, 12 << 20, [(0, 64), (64, 128)]),   # 2 (not 111 + 17)
    (100, 1_000, 30_000, [(0, 25), (25, 50), (50, 75), (75, 100)]),  # 3 -> 4: even
    (5, 100, 1, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),  # one sample a part
])
def test_batch_parts_are_balanced_and_even(monkeypatch, batch, sample_bytes, part_bytes, want):
    from lamina.backend import im2col

    monkeypatch.setattr(im2col, "PART_BYTES", part_bytes)
    assert im2col.batch_parts(batch, sample_bytes) == want


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_gradients_are_the_same_in_batch_parts(monkeypatch, groups, relu):
    # The forward and backward run in batch parts (summed in order for the kernel and
    # bias): one sample a part must give what one part for the whole batch gives.
    from lamina.backend import Variable, gradients, im2col

    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 6, 7, 4))
    kernel = rng.standard_normal((3, 2, 4 // groups, 6))
    bias = rng.standard_normal(6)
    g = rng.standard_normal((5, 3, 7, 6))

    def run():
        xv, kv, bv = (Variable(a, dtype="float64") for a in (x, kernel, bias))
        out = run_conv(xv, kv, bv, (2, 1), "same", groups=groups, relu=relu)
        return [out.data, *gradients(out, [xv, kv, bv], output_gradient=g)]

    monkeypatch.setattr(im2col, "PART_BYTES", 1 << 30)
    whole = run()
    monkeypatch.setattr(im2col, "PART_BYTES", 1)  # one sample a part
    assert len(im2col.batch_parts(5, 100)) == 5
    for got, want in zip(run(), whole):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    check_gradients(lambda a: run_conv(a, kernel, None, (2, 1), "same", groups=groups), [x])
