"""The attention core's compiled kernels (``lamina.backend.attention_kernels``) against
the numpy path: outputs and every gradient over odd shapes, one head, masks, causal,
dropout, the fused self-attention node; seeded training repeats bit for bit;
``LAMINA_KERNELS=numpy`` never loads them; numba's BLAS runs on one thread in them.
(float64 central differences of the kernel path: test_attention_primitive.py and
test_self_attention.py run every test on both paths.)"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lamina.backend import Variable, autodiff, compiled
from lamina.backend import attention as att
from lamina.backend import self_attention as sa
from tests.sdk.backend.blas_counts import count_inside, other_blas_or_skip

pytest.importorskip("numba")
RNG = np.random.default_rng(23)

SHAPES = [  # batch, target, source, heads, key_dim, value_dim
    pytest.param((2, 7, 5, 1, 3, 4), id="odd-one-head"),
    pytest.param((3, 13, 13, 2, 8, 8), id="odd-square"),
    pytest.param((2, 33, 17, 3, 16, 5), id="odd-dims"),
    pytest.param((1, 1, 1, 1, 1, 1), id="one"),
    pytest.param((4, 64, 64, 4, 32, 32), id="bench"),
]
OPTIONS = ["plain", "mask", "mask-per-head", "mask-full-row", "causal", "dropout", "scale"]


def _options(option, b, t, s, h):
    if option == "mask":
        mask = RNG.random((b, t, s)) > 0.3
        mask[..., 0] = True
        return {"mask": mask}
    if option == "mask-per-head":
        return {"mask": RNG.random((1, h, t, s)) > 0.3}
    if option == "mask-full-row":
        mask = RNG.random((b, t, s)) > 0.3
        mask[0, 0] = False
        return {"mask": mask}
    if option == "causal":
        return {"mask": np.tril(np.ones((t, s), bool))[None]}
    if option == "dropout":
        return {"dropout_mask": (RNG.random((b, h, t, s)) > 0.25) / 0.75}
    if option == "scale":
        return {"scale": 0.7}
    return {}


def both_paths(fn, arrays, grad_shape, dtype):
    """fn's output and gradients on the numpy path and on the kernels."""
    g = RNG.standard_normal(grad_shape).astype(dtype)
    found = []
    for choice in ("numpy", "numba"):
        with compiled.use_kernels(choice):
            inputs = [Variable(a, dtype=dtype) for a in arrays]
            out = fn(*inputs)
            found.append([out.data, *autodiff.gradients(out, inputs, output_gradient=g)])
    return found


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_equal_the_numpy_path(shape, option, dtype, tol):
    b, t, s, h, d, dv = shape
    if option == "causal" and t != s:
        t = s
    kwargs = _options(option, b, t, s, h)
    arrays = [RNG.standard_normal(x).astype(dtype) for x in
              ((b, t, h, d), (b, s, h, d), (b, s, h, dv))]
    ref, got = both_paths(lambda q, k, v: att.attention(q, k, v, **kwargs), arrays,
                          (b, t, h, dv), dtype)
    for r, g in zip(ref, got):
        assert g.dtype == np.dtype(dtype) and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


@pytest.mark.parametrize("option", ["plain", "mask", "dropout"])
@pytest.mark.parametrize("shape", SHAPES[:3] + SHAPES[4:])
def test_fused_self_attention_node_equals_the_numpy_path(shape, option):
    """projected_self_attention (projections, attention, output projection in one node)."""
    b, t, _, h, d, dv = shape
    kwargs = _options(option, b, t, t, h)
    f, width, out = 6, h * (2 * d + dv), 5
    arrays = [RNG.standard_normal((b, t, f)), RNG.standard_normal((f, width)) * 0.5,
              RNG.standard_normal(width) * 0.1, RNG.standard_normal((h * dv, out)) * 0.5,
              RNG.standard_normal(out) * 0.1]

    def fn(x, kernel, bias, wo, bo):
        return sa.projected_self_attention(x, kernel, bias, h, d, dv, output_kernel=wo,
                                           output_bias=bo, **kwargs)

    ref, got = both_paths(fn, [a.astype(np.float32) for a in arrays], (b, t, out),
                          "float32")
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=5e-5, atol=5e-5)


def test_packed_attention_equals_the_numpy_path_on_a_strided_input():
    """A packed input that is not contiguous (a column slice) is read right."""
    b, t, h, d = 3, 9, 2, 4
    wide = RNG.standard_normal((b, t, 3 * h * d + 5)).astype(np.float32)
    ref, got = both_paths(lambda x: att.packed_attention(x, h, d), [wide[..., 5:]],
                          (b, t, h, d), "float32")
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-5)


def test_float32_exp_is_within_two_ulps_and_flushes_masked_scores():
    from lamina.backend import attention_kernels as ak

    x = np.concatenate([np.linspace(-86, 0, 50001), [-1e9, -200.0, -87.5]]).astype(np.float32)
    block = x.reshape(1, -1).copy()
    total = np.empty(block.shape[1], np.float32)
    ak._exp_f32(block, np.zeros(block.shape[1], np.float32), total)
    np.testing.assert_array_equal(total, block[0])
    want = np.exp(x[:-3].astype(np.float64))
    got = block[0, :-3].astype(np.float64)
    assert np.max(np.abs(got / want - 1)) < 2.5e-7
    assert np.all(block[0, -3:] < 3e-37) and np.all(block[0, -3:] >= 0)


def _train_weights():
    import lamina
    from lamina import layers

    lamina.utils.set_random_seed(0)
    inputs = lamina.Input((24, 16))
    h = layers.LayerNormalization()(layers.Add()([
        inputs, layers.MultiHeadAttention(num_heads=2, key_dim=8, dropout=0.1)(inputs,
                                                                               inputs)]))
    outputs = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling1D()(h))
    model = lamina.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 24, 16)).astype(np.float32)
    model.fit(x, rng.integers(0, 3, 96), batch_size=32, epochs=2, verbose=0)
    return [w.tobytes() for w in model.get_weights()]


def test_seeded_training_on_the_kernels_repeats_bit_for_bit():
    with compiled.use_kernels("numba"):
        first = _train_weights()
        assert _train_weights() == first
    with compiled.use_kernels("numpy"):
        assert _train_weights() != first  # (the kernels did run: other rounding)


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, **env}).stdout.strip()


ATTEND = ("import numpy as np, sys; from lamina.backend import Tensor; "
          "from lamina.backend import attention as att; "
          "x = Tensor(np.ones((64, 128, 2, 64), np.float32)); "
          "core = att.Attention(); core.needs = (True,) * 3; core.forward(x.data, x.data, "
          "x.data); ")


def test_lamina_kernels_numpy_runs_the_numpy_path_without_numba():
    out = _run(ATTEND + "print(core.core.kernels is None, 'numba' in sys.modules, "
               "'lamina.backend.attention_kernels' in sys.modules)", LAMINA_KERNELS="numpy")
    assert out == "True False False"


def test_numbas_blas_runs_on_one_thread_inside_the_kernels_only(monkeypatch):
    """numba's np.dot calls scipy's OpenBLAS, not numpy's: one thread in every kernel call
    (on the pool's threads too), its count given back after them."""
    others = other_blas_or_skip()
    import threadpoolctl

    from lamina.backend import attention_kernels

    inside = count_inside(monkeypatch, attention_kernels,
                          ("_attention_forward", "_attention_backward"), others)
    arrays = [RNG.standard_normal((4, 64, 4, 32)).astype(np.float32) for _ in range(3)]
    with threadpoolctl.threadpool_limits(2, user_api="blas"), compiled.use_kernels("numba"):
        inputs = [Variable(a, dtype="float32") for a in arrays]
        autodiff.gradients(att.attention(*inputs), inputs)
        after = [ctl.get_num_threads() for ctl in others]
    assert len(inside) >= 2 and all(counts == [1] * len(others) for counts in inside)
    assert after == [2] * len(others)


@pytest.mark.parametrize("wanted", [(0,), (1,), (2,), (0, 2)], ids=["q", "k", "v", "q,v"])
def test_only_the_wanted_gradients(wanted):
    """Inputs without gradients get none (the kernels skip their products)."""
    from lamina.backend import Tensor

    arrays = [RNG.standard_normal((2, 9, 3, 4)).astype(np.float32) for _ in range(3)]
    g = RNG.standard_normal((2, 9, 3, 4)).astype(np.float32)
    found = []
    for choice in ("numpy", "numba"):
        with compiled.use_kernels(choice):
            inputs = [Variable(a, dtype="float32") if i in wanted else Tensor(a)
                      for i, a in enumerate(arrays)]
            out = att.attention(*inputs)
            found.append(autodiff.gradients(out, [inputs[i] for i in wanted],
                                            output_gradient=g))
    for r, k in zip(*found):
        np.testing.assert_allclose(k, r, rtol=2e-5, atol=2e-5)
