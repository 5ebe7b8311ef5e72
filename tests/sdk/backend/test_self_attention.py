"""Self-attention with its projection in one node (``lamina.backend.self_attention``):
gradients against float64 central differences, equal to the two-node composition,
parts of whole batch rows only, bits independent of the thread count."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.backend import Tensor, Variable, autodiff
from lamina.backend import attention as att
from lamina.backend import self_attention as sa
from lamina.backend.threads import set_thread_policy
from lamina.testing import check_gradients

RNG = np.random.default_rng(17)


# Every test on the numpy path and on the compiled kernels (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("kernels")
B, T, F, H, D, DV = 3, 4, 5, 2, 3, 4
WIDTH = H * (2 * D + DV)
MASK = RNG.random((B, T, T)) > 0.3
MASK[:, :, 0] = True
DROP = (RNG.random((B, H, T, T)) > 0.4) / 0.6


def inputs(bias=True):
    arrays = [RNG.standard_normal((B, T, F)), RNG.standard_normal((F, WIDTH)) * 0.5]
    return arrays + [RNG.standard_normal(WIDTH) * 0.1] if bias else arrays


GRADIENT_TABLE = [
    pytest.param({}, True, id="plain"),
    pytest.param({"mask": MASK}, True, id="mask"),
    pytest.param({"scale": 0.7}, False, id="no-bias,scale"),
    pytest.param({"dropout_mask": DROP, "mask": MASK}, True, id="dropout"),
]


@pytest.mark.parametrize("kwargs, bias", GRADIENT_TABLE)
def test_gradients_match_central_differences(kwargs, bias):
    def fn(*args):
        return sa.projected_self_attention(*args, num_heads=H, key_dim=D, value_dim=DV,
                                           **kwargs)

    assert check_gradients(fn, inputs(bias)) <= 1e-6


@pytest.mark.parametrize("out_bias", [True, False], ids=["output-bias", "no-output-bias"])
def test_gradients_with_the_output_projection(out_bias):
    def fn(x, k, b, wo, bo=None):
        return sa.projected_self_attention(x, k, b, H, D, DV, mask=MASK, output_kernel=wo,
                                           output_bias=bo)

    extra = [RNG.standard_normal((H * DV, 6)) * 0.5] + ([RNG.standard_normal(6)] if out_bias
                                                         else [])
    assert check_gradients(fn, inputs() + extra) <= 1e-6


def test_output_projection_equals_the_context_times_the_kernel():
    x, kernel, bias = (Tensor(a) for a in inputs())
    wo, bo = RNG.standard_normal((H * DV, 6)), RNG.standard_normal(6)
    context = sa.projected_self_attention(x, kernel, bias, H, D, DV).data
    out = sa.projected_self_attention(x, kernel, bias, H, D, DV, output_kernel=Tensor(wo),
                                      output_bias=Tensor(bo)).data
    np.testing.assert_allclose(out, context.reshape(B, T, -1) @ wo + bo, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"mask": MASK, "scale": 0.3}])
def test_equals_projection_then_packed_attention(kwargs):
    x, kernel, bias = inputs()
    xs, ks, bs = (Variable(a, dtype=a.dtype) for a in (x, kernel, bias))
    g = RNG.standard_normal((B, T, H, DV))
    one = sa.projected_self_attention(xs, ks, bs, H, D, DV, **kwargs)
    grads_one = autodiff.gradients(one, [xs, ks, bs], output_gradient=g)
    qkv = (x.reshape(-1, F) @ kernel + bias).reshape(B, T, WIDTH)
    qs = Variable(qkv, dtype=qkv.dtype)
    two = att.packed_attention(qs, H, D, DV, **kwargs)
    (dqkv,) = autodiff.gradients(two, [qs], output_gradient=g)
    dqkv = dqkv.reshape(-1, WIDTH)
    np.testing.assert_allclose(one.data, two.data, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads_one, (dqkv @ kernel.T, x.reshape(-1, F).T @ dqkv,
                                     dqkv.sum(0))):
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-10, atol=1e-12)


def test_long_sequences_are_refused(monkeypatch):
    monkeypatch.setattr(att, "PART_BYTES", 8)  # each part: heads of one batch row
    assert not sa.whole_rows(B, T, H, 8)
    with pytest.raises(ValueError, match="too long"):
        sa.projected_self_attention(Tensor(np.zeros((B, T, F))), Tensor(np.zeros((F, WIDTH))),
                                    None, H, D, DV)


def test_shapes_that_do_not_agree_name_them():
    with pytest.raises(ValueError, match=r"kernel.shape=\(5, 7\)"):
        sa.projected_self_attention(Tensor(np.zeros((B, T, F))), Tensor(np.zeros((F, 7))),
                                    None, H, D, DV)


def _bits():
    rng = np.random.default_rng(1)
    x = Variable(rng.standard_normal((8, 6, F)).astype(np.float32))
    k = Variable(rng.standard_normal((F, WIDTH)).astype(np.float32))
    b = Variable(rng.standard_normal(WIDTH).astype(np.float32))
    wo = Variable(rng.standard_normal((H * DV, 5)).astype(np.float32))
    bo = Variable(rng.standard_normal(5).astype(np.float32))
    out = sa.projected_self_attention(x, k, b, H, D, DV, output_kernel=wo, output_bias=bo)
    g = rng.standard_normal(out.shape).astype(np.float32)
    return [out.data.tobytes()] + [a.tobytes() for a in autodiff.gradients(
        out, [x, k, b, wo, bo], output_gradient=g)]


def test_threads_do_not_change_the_bits(pool_of_two, monkeypatch):
    monkeypatch.setattr(att, "PART_BYTES", 2 * H * 6 * 6 * 4)  # parts of two batch rows
    assert len(att._parts(8, H, 6, 6, 4)) == 4 and sa.whole_rows(8, 6, H, 4)
    with_worker = _bits()
    set_thread_policy(1)
    try:
        alone = _bits()
    finally:
        set_thread_policy("auto")
    assert with_worker == alone


def _block_weights(threads):
    import lamina
    from lamina import layers

    set_thread_policy(threads)
    try:
        lamina.utils.set_random_seed(0)
        inputs = lamina.Input((64, 32))
        h = layers.LayerNormalization()(layers.Add()([
            inputs, layers.MultiHeadAttention(num_heads=4, key_dim=32)(inputs, inputs)]))
        h = layers.Dense(32)(layers.Dense(128, activation="relu")(h))
        outputs = layers.Dense(4, activation="softmax")(layers.GlobalAveragePooling1D()(h))
        model = lamina.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 64, 32)).astype(np.float32)
        model.fit(x, rng.integers(0, 4, 64), batch_size=32, epochs=1, shuffle=False,
                  verbose=0)
        return [w.tobytes() for w in model.get_weights()]
    finally:
        set_thread_policy("auto")


def test_seeded_transformer_block_trains_to_the_same_bits_with_a_worker(pool_of_two):
    # 32 x 64 rows: the fused attention node in two parts, Dense's row-split path
    assert len(att._parts(32, 4, 64, 64, 4)) == 2 and sa.whole_rows(32, 64, 4, 4)
    assert _block_weights("auto") == _block_weights(1)
