"""MultiHeadAttention's fused path (``lamina.backend.attention``) against its graph of
small ops (``_fused_attention = False``): outputs and gradients agree to rtol 1e-5 for
self- and cross-attention, masks, causal, gate, dropout; scores fall back."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend import Tensor, Variable, autodiff, self_attention
from lamina.backend import attention as backend_attention

RNG = np.random.default_rng(5)


# Every test on the numpy path and on the compiled kernels (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("kernels")


@pytest.fixture(autouse=True)
def fused_even_when_small(monkeypatch):
    """These shapes are below the layer's minimum size for the fused path: lower it."""
    for cls in (layers.MultiHeadAttention, layers.GroupQueryAttention):
        monkeypatch.setattr(cls, "_fused_attention_min_scores", 1)


def twins(dtype="float32", q_dim=8, v_dim=8, **kwargs):
    """Two equal layers: the fused one and the unfused reference."""
    kwargs = {"num_heads": 2, "key_dim": 4, "dtype": dtype, **kwargs}
    fused, plain = layers.MultiHeadAttention(**kwargs), layers.MultiHeadAttention(**kwargs)
    plain._fused_attention = False
    shapes = ((3, 5, q_dim), (3, 6, v_dim))
    fused.build(*shapes)
    plain.build(*shapes)
    plain.set_weights(fused.get_weights())
    return fused, plain


def outputs_and_grads(layer, query, value=None, key=None, **call):
    """The output and the gradients of a weighted sum of it (weights, then inputs)."""
    inputs = [x for x in (query, value, key) if isinstance(x, Variable)]
    out = layer(query, value, key, **call)
    weights = np.random.default_rng(0).standard_normal(out.shape)
    grads = autodiff.gradients(out, list(layer.trainable_variables) + inputs,
                               output_gradient=weights)
    return out.data, grads


def assert_same(fused, plain, *args, **call):
    out_f, grads_f = outputs_and_grads(fused, *args, **call)
    twin_args = [a for a in args]
    out_p, grads_p = outputs_and_grads(plain, *twin_args, **call)
    np.testing.assert_allclose(out_f, out_p, rtol=1e-5, atol=1e-6)
    assert len(grads_f) == len(grads_p)
    for gf, gp in zip(grads_f, grads_p):
        np.testing.assert_allclose(gf, gp, rtol=1e-5, atol=1e-5)


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of the two fused primitives."""
    calls = {"packed": 0, "attention": 0}
    # Self-attention is "packed" either way: projection and attention as one node
    # (backend.self_attention) or the packed attention after one projection GEMM.
    for module, name, key in ((backend_attention, "packed_attention", "packed"),
                              (backend_attention, "attention", "attention"),
                              (self_attention, "projected_self_attention", "packed")):
        real = getattr(module, name)

        def wrapped(*a, _real=real, _key=key, **k):
            calls[_key] += 1
            return _real(*a, **k)

        monkeypatch.setattr(module, name, wrapped)
    return calls


def var(*shape):
    return Variable(RNG.standard_normal(shape).astype("float32"))


CAUSAL_CALL = {"use_causal_mask": True}


@pytest.mark.parametrize("call", [{}, CAUSAL_CALL, "mask"], ids=["plain", "causal", "mask"])
def test_self_attention_packed(spy, call):
    fused, plain = twins()
    x = var(3, 5, 8)
    if call == "mask":
        call = {"attention_mask": RNG.random((3, 5, 5)) > 0.3}
    assert_same(fused, plain, x, x, **call)
    assert spy == {"packed": 1, "attention": 0}


@pytest.mark.parametrize("kwargs", [{}, {"value_dim": 3, "output_shape": 7},
                                    {"use_bias": False}, {"use_gate": True}],
                         ids=["default", "value_dim", "no_bias", "gate"])
def test_cross_attention_and_layouts(spy, kwargs):
    fused, plain = twins(v_dim=6, **kwargs)
    q, v, k = var(3, 5, 8), var(3, 6, 6), var(3, 6, 6)
    assert_same(fused, plain, q, v, attention_mask=RNG.random((3, 5, 6)) > 0.3)
    assert_same(fused, plain, q, v, k, use_causal_mask=True)
    assert spy == {"packed": 0, "attention": 2}


def test_self_attention_value_dim_and_gate_packed(spy):
    fused, plain = twins(value_dim=3, use_gate=True, output_shape=5)
    x = var(3, 5, 8)
    assert_same(fused, plain, x, x, use_causal_mask=True)
    assert spy["packed"] == 1


@pytest.mark.parametrize("kwargs", [{"value_dim": 3, "output_shape": 7},
                                    {"use_bias": False}], ids=["output_shape", "no_bias"])
def test_self_attention_with_its_output_projection_in_the_node(spy, kwargs):
    fused, plain = twins(**kwargs)
    x = var(3, 5, 8)
    assert_same(fused, plain, x, x, attention_mask=RNG.random((3, 5, 5)) > 0.3)
    assert spy == {"packed": 1, "attention": 0}


def test_dropout_draws_the_same_masks():
    fused, plain = twins(dropout=0.4, seed=3)
    x = var(3, 5, 8)
    assert_same(fused, plain, x, x, training=True)
    # Inference applies no dropout on either path.
    assert_same(fused, plain, x, x, training=False)


def test_sliding_window_and_keras_masks(spy):
    fused, plain = twins(sliding_window=2)
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0], [1, 1, 1, 1, 1]])
    emb = layers.Embedding(10, 8, mask_zero=True)
    emb.build((3, 5))
    emb.set_weights([RNG.standard_normal((10, 8)).astype("float32") * 2])
    x = emb(ids)
    np.testing.assert_allclose(fused(x, x).data, plain(x, x).data, rtol=1e-5, atol=1e-6)
    assert spy["packed"] == 1


def test_scores_fall_back_to_the_graph(spy):
    fused, plain = twins()
    x = var(3, 5, 8)
    out, scores = fused(x, x, return_attention_scores=True)
    assert spy == {"packed": 0, "attention": 0}
    out_p, scores_p = plain(x, x, return_attention_scores=True)
    np.testing.assert_array_equal(out.data, out_p.data)
    np.testing.assert_array_equal(scores.data, scores_p.data)
    np.testing.assert_allclose(fused(x, x).data, out.data, rtol=1e-5, atol=1e-6)


def test_float64_and_numpy_inputs():
    fused, plain = twins(dtype="float64")
    x = RNG.standard_normal((3, 5, 8))
    np.testing.assert_allclose(fused(x, x).data, plain(x, x).data, rtol=1e-12)


def test_functional_model_trains_through_the_fused_path(spy):
    inputs = lamina.Input((6, 8))
    outputs = layers.GlobalAveragePooling1D()(
        layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs))
    model = lamina.Model(inputs, layers.Dense(3)(outputs))
    model.compile(optimizer="adam", loss="mse")
    x, y = RNG.standard_normal((16, 6, 8)), RNG.standard_normal((16, 3))
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert spy["packed"] >= 2
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert isinstance(model(x[:2]), Tensor)


def test_small_calls_stay_on_the_graph(spy, monkeypatch):
    monkeypatch.setattr(layers.MultiHeadAttention, "_fused_attention_min_scores", 4096)
    fused, plain = twins()
    x = var(3, 5, 8)  # 3 * 2 * 5 * 5 = 150 score elements
    np.testing.assert_array_equal(fused(x, x).data, plain(x, x).data)
    assert spy == {"packed": 0, "attention": 0}
    big = var(64, 6, 8)  # 64 * 2 * 6 * 6 = 4608
    fused(big, big)
    assert spy["packed"] == 1


@pytest.mark.parametrize("call", [{}, {"use_causal_mask": True}, {"training": True}],
                         ids=["plain", "causal", "dropout"])
def test_group_query_attention_fused_equals_graph(spy, call):
    kwargs = {"head_dim": 4, "num_query_heads": 4, "num_key_value_heads": 2,
              "use_gate": True, "dropout": 0.3, "seed": 1}
    fused, plain = layers.GroupQueryAttention(**kwargs), layers.GroupQueryAttention(**kwargs)
    plain._fused_attention = False
    for layer in (fused, plain):
        layer.build((3, 5, 8), (3, 6, 8))
    plain.set_weights(fused.get_weights())
    q, v = var(3, 5, 8), var(3, 6, 8)
    assert_same(fused, plain, q, v, **call)
    assert spy == {"packed": 0, "attention": 1}
    out, scores = fused(q, v, return_attention_scores=True)
    assert spy["attention"] == 1 and scores.shape == (3, 4, 5, 6)
