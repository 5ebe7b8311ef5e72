"""GroupQueryAttention, and MultiHeadAttention's use_gate / sliding_window / flash_attention.

Numerics against real Keras are in test_keras_layer_fixtures.py (gqa*, mha_gate_window);
here: run_layer_test (through a list-calling subclass), gradients, masks and errors.
"""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend.tensor import Tensor
from lamina.testing import run_layer_test


class _ListGQA(layers.GroupQueryAttention):
    """Calls ``[query, value]`` as ``(query, value)`` so run_layer_test can drive it."""

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (list, tuple)):
            return super().__call__(*inputs, **kwargs)
        return super().__call__(inputs, *args, **kwargs)


class _ListMHA(layers.MultiHeadAttention):
    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (list, tuple)):
            return super().__call__(*inputs, **kwargs)
        return super().__call__(inputs, *args, **kwargs)


@pytest.mark.parametrize("kwargs, n_weights, n_params", [
    ({"head_dim": 2, "num_query_heads": 4, "num_key_value_heads": 2}, 8,
     (6 * 8 + 8) + 2 * (6 * 4 + 4) + (8 * 6 + 6)),
    ({"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1, "use_gate": True,
      "sliding_window": 2, "use_bias": False}, 5, 6 * 4 + 2 * 6 * 2 + 6 * 4 + 4 * 6),
])
def test_run_layer_test(kwargs, n_weights, n_params):
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((2, 4, 6)).astype("float32"),
            rng.standard_normal((2, 3, 6)).astype("float32")]
    run_layer_test(_ListGQA, kwargs, input_data=data, expected_output_shape=(2, 4, 6),
                   expected_num_trainable_weights=n_weights, expected_num_params=n_params)


def test_mha_with_gate_and_window_through_run_layer_test():
    rng = np.random.default_rng(1)
    data = [rng.standard_normal((2, 4, 5)).astype("float32"),
            rng.standard_normal((2, 4, 5)).astype("float32")]
    layer = run_layer_test(_ListMHA, {"num_heads": 2, "key_dim": 3, "use_gate": True,
                                      "sliding_window": 1},
                           input_data=data, expected_output_shape=(2, 4, 5),
                           expected_num_trainable_weights=10)
    assert [w.path.split("/")[0] for w in layer.weights][4:6] == ["gate", "gate"]
    assert layer.get_config()["use_gate"] and layer.get_config()["sliding_window"] == 1


def test_sliding_window_one_attends_to_itself_only():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 6)).astype("float32")
    layer = layers.GroupQueryAttention(2, 2, 1, sliding_window=1)
    _, scores = layer(x, x, return_attention_scores=True)
    np.testing.assert_allclose(scores.numpy()[0, 0], np.eye(4), atol=1e-6)


def test_one_key_value_head_is_shared_by_all_query_heads():
    # With 1 kv head the two query heads see the same keys: equal query kernels give
    # equal score maps.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4)).astype("float32")
    layer = layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1)
    layer(x, x)
    kernel = layer._query_dense.kernel.numpy()
    kernel[:, 1] = kernel[:, 0]
    layer._query_dense.kernel.assign(kernel)
    _, scores = layer(x, x, return_attention_scores=True)
    np.testing.assert_allclose(scores.numpy()[:, 0], scores.numpy()[:, 1], atol=1e-6)


def test_masks_carried_by_inputs():
    rng = np.random.default_rng(4)
    q = rng.standard_normal((2, 3, 4)).astype("float32")
    v = Tensor(rng.standard_normal((2, 5, 4)).astype("float32"))
    v._keras_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    layer = layers.GroupQueryAttention(2, 2, 2)
    _, scores = layer(q, v, return_attention_scores=True)
    assert np.all(scores.numpy()[0, :, :, 3:] < 1e-6)
    explicit = layer(q, v.data, value_mask=v._keras_mask)
    np.testing.assert_allclose(layer(q, v).numpy(), explicit.numpy(), atol=1e-6)


def test_symbolic_scores_and_config():
    q, v = lamina.Input((5, 8)), lamina.Input((7, 8))
    layer = layers.GroupQueryAttention(4, 4, 2, name="gqa")
    out, scores = layer(q, v, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 4, 5, 7)
    config = layer.get_config()
    assert layers.GroupQueryAttention.from_config(config).get_config() == config
    assert "flash_attention" not in config  # as in Keras


@pytest.mark.parametrize("make, match", [
    (lambda: layers.GroupQueryAttention(2, 3, 2), "divisible"),
    (lambda: layers.GroupQueryAttention(0, 2, 2), "head_dim=0"),
    (lambda: layers.GroupQueryAttention(2, 2, 2, sliding_window=0), "sliding_window=0"),
    (lambda: layers.GroupQueryAttention(2, 2, 2, dropout=0.1, flash_attention=True),
     "Dropout is not supported"),
    (lambda: layers.MultiHeadAttention(2, 2, sliding_window=-1), "sliding_window=-1"),
    (lambda: layers.MultiHeadAttention(2, 2, dropout=0.2, flash_attention=True),
     "Dropout is not supported"),
])
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cls, args", [(layers.GroupQueryAttention, (2, 2, 1)),
                                       (layers.MultiHeadAttention, (2, 2))])
def test_flash_attention_computes_the_same_but_returns_no_scores(cls, args):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4)).astype("float32")
    plain, flash = cls(*args), cls(*args, flash_attention=True)
    plain(x, x)
    flash(x, x)
    flash.set_weights(plain.get_weights())
    np.testing.assert_allclose(flash(x, x).numpy(), plain(x, x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="not supported when flash"):
        flash(x, x, return_attention_scores=True)
