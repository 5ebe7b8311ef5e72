"""MultiHeadAttention (Keras 3 weight layout) and Attention against slow numpy references,
with masks, causal masks, returned scores, gradients and a functional training step."""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend.config import floatx_scope
from lamina.backend.tensor import Tensor
from lamina.testing import check_gradients, run_layer_test


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _mha_reference(layer, q, v, k=None, mask=None):
    """Per batch and head loops over Keras's einsum equations."""
    k = v if k is None else k
    wq, bq, wk, bk, wv, bv, wo, bo = [w.astype(np.float64) for w in layer.get_weights()]
    n, t, _ = q.shape
    heads, key_dim = wq.shape[1], wq.shape[2]
    out = np.zeros((n, t, wo.shape[-1]))
    probs = np.zeros((n, heads, t, v.shape[1]))
    for b in range(n):
        for h in range(heads):
            qh = q[b] @ wq[:, h, :] + bq[h]
            kh = k[b] @ wk[:, h, :] + bk[h]
            vh = v[b] @ wv[:, h, :] + bv[h]
            scores = (qh / np.sqrt(key_dim)) @ kh.T
            if mask is not None:
                scores = scores + (1.0 - mask[b]) * -1e9
            p = _softmax(scores)
            probs[b, h] = p
            out[b] += (p @ vh) @ wo[h]
    return out + bo, probs


@pytest.mark.parametrize("kwargs, q_dim, v_dim, n_params", [
    # Keras 3 figures: MultiHeadAttention(num_heads=2, key_dim=16) on dim 32 has 4,224.
    ({"num_heads": 2, "key_dim": 16}, 32, 32, 4224),
    ({"num_heads": 2, "key_dim": 16, "use_bias": False}, 32, 32, 4096),
    # 5*2*3+6 (query) + 7*2*3+6 (key) + 7*2*4+8 (value) + 2*4*6+6 (output) = 202.
    ({"num_heads": 2, "key_dim": 3, "value_dim": 4, "output_shape": 6}, 5, 7, 202),
])
def test_mha_weights_match_keras(kwargs, q_dim, v_dim, n_params):
    layer = layers.MultiHeadAttention(**kwargs)
    q = np.zeros((2, 3, q_dim), dtype="float32")
    v = np.zeros((2, 4, v_dim), dtype="float32")
    layer(q, v)
    assert layer.count_params() == n_params
    heads, kd = kwargs["num_heads"], kwargs["key_dim"]
    vd, out = kwargs.get("value_dim", kd), kwargs.get("output_shape", q_dim)
    expected = [("query/kernel", (q_dim, heads, kd)), ("query/bias", (heads, kd)),
                ("key/kernel", (v_dim, heads, kd)), ("key/bias", (heads, kd)),
                ("value/kernel", (v_dim, heads, vd)), ("value/bias", (heads, vd)),
                ("attention_output/kernel", (heads, vd, out)),
                ("attention_output/bias", (out,))]
    if not kwargs.get("use_bias", True):
        expected = [e for e in expected if not e[0].endswith("bias")]
    assert [(w.path, w.shape) for w in layer.weights] == expected


def _random_mha(seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=6,
                                      **kwargs)
    q = rng.standard_normal((2, 3, 5)).astype("float32")
    v = rng.standard_normal((2, 4, 7)).astype("float32")
    layer(q, v)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
    return layer, q, v


def test_mha_forward_matches_reference():
    layer, q, v = _random_mha()
    out, probs = layer(q, v, return_attention_scores=True)
    ref, ref_probs = _mha_reference(layer, q.astype(np.float64), v.astype(np.float64))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(probs.numpy(), ref_probs, rtol=1e-5, atol=1e-6)


def test_mha_separate_key():
    layer, q, v = _random_mha()
    k = np.random.default_rng(5).standard_normal(v.shape).astype("float32")
    ref, _ = _mha_reference(layer, q.astype(np.float64), v.astype(np.float64),
                            k.astype(np.float64))
    np.testing.assert_allclose(layer(q, v, key=k).numpy(), ref, rtol=1e-5, atol=1e-4)


def test_mha_attention_and_causal_masks():
    layer, q, v = _random_mha()
    mask = np.random.default_rng(1).random((2, 3, 4)) > 0.4
    mask[:, :, 0] = True
    ref, _ = _mha_reference(layer, q.astype(np.float64), v.astype(np.float64), mask=mask)
    np.testing.assert_allclose(layer(q, v, attention_mask=mask).numpy(), ref,
                               rtol=1e-5, atol=1e-4)
    causal = np.tril(np.ones((3, 4), dtype=bool))[None].repeat(2, 0)
    ref, _ = _mha_reference(layer, q.astype(np.float64), v.astype(np.float64), mask=causal)
    _, probs = layer(q, v, use_causal_mask=True, return_attention_scores=True)
    np.testing.assert_allclose(layer(q, v, use_causal_mask=True).numpy(), ref,
                               rtol=1e-5, atol=1e-4)
    assert np.all(probs.numpy()[:, :, 0, 1:] < 1e-6)


def test_mha_uses_the_masks_the_inputs_carry():
    layer, q, v = _random_mha()
    value_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)
    masked_v = Tensor(v)
    masked_v._keras_mask = value_mask
    full = np.broadcast_to(value_mask[:, None, :], (2, 3, 4))
    ref, _ = _mha_reference(layer, q.astype(np.float64), v.astype(np.float64), mask=full)
    np.testing.assert_allclose(layer(q, masked_v).numpy(), ref, rtol=1e-5, atol=1e-4)


def test_mha_gradients_of_inputs_and_weights():
    rng = np.random.default_rng(2)
    mask = rng.random((2, 3, 4)) > 0.3
    with floatx_scope("float64"):
        layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, output_shape=4)
        q, v = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 4, 6))
        layer(q, v)
        check_gradients(lambda q, v, *w: layer(q, v, attention_mask=mask),
                        [q, v, *layer.trainable_weights], rtol=1e-6)
        check_gradients(lambda q, v, *w: layer(q, v, key=v, use_causal_mask=True),
                        [q, v, *layer.trainable_weights], rtol=1e-6)


def test_mha_dropout_applies_only_in_training():
    layer, q, v = _random_mha(dropout=0.5, seed=0)
    np.testing.assert_array_equal(layer(q, v).numpy(), layer(q, v, training=False).numpy())
    assert not np.allclose(layer(q, v, training=True).numpy(), layer(q, v).numpy())


def test_mha_config_round_trip_and_functional_training_step():
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, name="mha")
    inp = lamina.Input((5, 8))
    out, scores = layer(inp, inp, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 2, 5, 5)
    clone = layers.MultiHeadAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = lamina.Model(inp, layers.Flatten()(out))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(3).standard_normal((8, 5, 8)).astype("float32")
    before = [w.numpy() for w in layer.weights]
    model.fit(x, np.ones((8, 40), dtype="float32"), epochs=1, batch_size=8, verbose=0)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, layer.weights))


@pytest.mark.parametrize("kwargs, message", [
    ({"num_heads": 0, "key_dim": 2}, "num_heads"),
    ({"num_heads": 2, "key_dim": -1}, "key_dim"),
    ({"num_heads": 2, "key_dim": 2, "dropout": 1.0}, "dropout"),
    ({"num_heads": 2, "key_dim": 2, "attention_axes": (1, 2)}, "attention_axes"),
])
def test_mha_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.MultiHeadAttention(**kwargs)


# -- Attention ----------------------------------------------------------------------------
def _attention_reference(q, v, k=None, scale=1.0, concat=None, v_mask=None, q_mask=None,
                         causal=False):
    k = v if k is None else k
    n, t, s = q.shape[0], q.shape[1], v.shape[1]
    scores = np.zeros((n, t, s))
    for b in range(n):
        for i in range(t):
            for j in range(s):
                if concat is None:
                    scores[b, i, j] = scale * q[b, i] @ k[b, j]
                else:
                    scores[b, i, j] = concat * np.tanh(scale * (q[b, i] + k[b, j])).sum()
    allowed = np.ones((n, t, s), dtype=bool)
    if v_mask is not None:
        allowed &= v_mask[:, None, :]
    if causal:
        allowed &= np.tril(np.ones((t, s), dtype=bool))
    weights = _softmax(scores - 1e9 * ~allowed)
    out = weights @ v
    if q_mask is not None:
        out = out * q_mask[:, :, None]
    return out, weights


@pytest.mark.parametrize("kwargs, n_params", [
    # Keras: Attention has no weights, a scalar `scale` with use_scale, and a scalar
    # `concat_score_weight` in concat mode.
    ({}, 0), ({"use_scale": True}, 1), ({"score_mode": "concat"}, 1),
    ({"score_mode": "concat", "use_scale": True}, 2),
])
def test_attention_layer(kwargs, n_params):
    rng = np.random.default_rng(4)
    q, v, k = (rng.standard_normal(s).astype("float32") for s in [(2, 3, 4), (2, 5, 4),
                                                                 (2, 5, 4)])
    layer = run_layer_test(layers.Attention, kwargs, input_data=[q, v, k],
                           expected_output_shape=(2, 3, 4),
                           expected_num_trainable_weights=n_params,
                           expected_num_params=n_params, run_training_check=n_params > 0)
    if n_params:
        layer.set_weights([np.array(0.7)] * n_params)
    scale = 0.7 if kwargs.get("use_scale") else 1.0
    concat = (0.7 if "score_mode" in kwargs else None)
    ref, ref_w = _attention_reference(q.astype(np.float64), v.astype(np.float64),
                                      k.astype(np.float64), scale=scale, concat=concat)
    out, weights = layer([q, v, k], return_attention_scores=True)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref_w, rtol=1e-5, atol=1e-6)


def test_attention_masks_and_causal_mask():
    rng = np.random.default_rng(5)
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    q_mask = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    v_mask = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    layer = layers.Attention()
    out = layer([q, v], mask=[q_mask, v_mask], use_causal_mask=True)
    ref, _ = _attention_reference(q, v, v_mask=v_mask, q_mask=q_mask, causal=True)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    qt = Tensor(q.astype("float32"))
    qt._keras_mask = q_mask
    np.testing.assert_array_equal(layer([qt, v])._keras_mask, q_mask)


def test_attention_gradients_with_masks():
    rng = np.random.default_rng(6)
    v_mask = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    with floatx_scope("float64"):
        layer = layers.Attention(use_scale=True, score_mode="concat")
        q, v = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 3))
        layer([q, v])
        check_gradients(lambda q, v, *w: layer([q, v], mask=[None, v_mask]),
                        [q, v, *layer.trainable_weights], rtol=1e-6)


def test_attention_rejects_bad_inputs():
    with pytest.raises(ValueError, match="must be called on a list of inputs"):
        layers.Attention()(np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="length 2 or 3"):
        layers.Attention()([np.ones((1, 2, 3))] * 4)
    with pytest.raises(ValueError, match="score_mode"):
        layers.Attention(score_mode="additive")
