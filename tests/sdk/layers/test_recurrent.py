"""SimpleRNN, LSTM, GRU, RNN: Keras's weights, equations, masks, states and gradients."""

import numpy as np
import pytest

import lamina
from lamina import layers, ops
from lamina.backend.config import floatx_scope
from lamina.testing import check_gradients, run_layer_test


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _softsign(a):
    return a / (1.0 + np.abs(a))


def reference(layer, x, mask=None, initial_state=None, act=np.tanh):
    """Keras's cell equations run step by step in numpy, from the layer's weights."""
    kernel, rec, *rest = [w.astype(np.float64) for w in layer.get_weights()]
    bias = rest[0] if rest else None
    u = rec.shape[0]
    kind = type(layer.cell).__name__
    n_states = 2 if kind == "LSTMCell" else 1
    states = ([np.asarray(s, np.float64) for s in initial_state] if initial_state is not None
              else [np.zeros((x.shape[0], u))] * n_states)
    h, c = states[0], states[-1]
    outs = []
    steps = range(x.shape[1] - 1, -1, -1) if layer.go_backwards else range(x.shape[1])
    for t in steps:
        xt = x[:, t].astype(np.float64)
        if kind == "SimpleRNNCell":
            h_new = act(xt @ kernel + h @ rec + (0 if bias is None else bias))
            c_new = h_new
        elif kind == "LSTMCell":
            z = xt @ kernel + h @ rec + (0 if bias is None else bias)
            i, f = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u])
            g, o = act(z[:, 2 * u:3 * u]), _sigmoid(z[:, 3 * u:])
            c_new = f * c + i * g
            h_new = o * act(c_new)
        elif layer.cell.reset_after:
            mx, mi = xt @ kernel + bias[0], h @ rec + bias[1]
            z = _sigmoid(mx[:, :u] + mi[:, :u])
            r = _sigmoid(mx[:, u:2 * u] + mi[:, u:2 * u])
            hh = act(mx[:, 2 * u:] + r * mi[:, 2 * u:])
            h_new = c_new = z * h + (1 - z) * hh
        else:
            mx = xt @ kernel + bias
            z = _sigmoid(mx[:, :u] + h @ rec[:, :u])
            r = _sigmoid(mx[:, u:2 * u] + h @ rec[:, u:2 * u])
            hh = act(mx[:, 2 * u:] + (r * h) @ rec[:, 2 * u:])
            h_new = c_new = z * h + (1 - z) * hh
        if mask is not None:
            keep = mask[:, t:t + 1]
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        h, c = h_new, c_new
        outs.append(h)
    seq = np.stack(outs, axis=1)
    output = seq if layer.return_sequences else h
    states = [h, c] if kind == "LSTMCell" else [h]
    return [output, *states] if layer.return_state else output


# Keras figures: SimpleRNN u*(d+u+1); LSTM 4u(d+u+1); GRU reset_after 3u(d+u+2), else
# 3u(d+u+1). LSTM(128) on 32 features: 4*128*(32+128+1) = 82,432.
@pytest.mark.parametrize("cls, kwargs, input_dim, params, bias_shape", [
    (layers.SimpleRNN, {"units": 32}, 8, 1312, (32,)),
    (layers.LSTM, {"units": 128}, 32, 82432, (512,)),
    (layers.GRU, {"units": 64}, 16, 15744, (2, 192)),
    (layers.GRU, {"units": 64, "reset_after": False}, 16, 15552, (192,)),
])
def test_parameter_counts_weight_shapes_and_order_match_keras(cls, kwargs, input_dim, params,
                                                              bias_shape):
    layer = cls(**kwargs)
    layer.build((None, 10, input_dim))
    assert layer.count_params() == params
    u, k = kwargs["units"], {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[cls.__name__]
    assert [w.shape for w in layer.weights] == [(input_dim, k * u), (u, k * u), bias_shape]
    cell = {"SimpleRNN": "simple_rnn_cell", "LSTM": "lstm_cell", "GRU": "gru_cell"}[cls.__name__]
    assert [w.path for w in layer.weights] == [
        f"{layer.name}/{cell}/{n}" for n in ("kernel", "recurrent_kernel", "bias")]


def test_lstm_unit_forget_bias_initialises_forget_gate_to_one():
    layer = layers.LSTM(3)
    layer.build((None, 4, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0, 0, 0, 1, 1, 1] + [0] * 6)
    layer = layers.LSTM(3, unit_forget_bias=False)
    layer.build((None, 4, 2))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0] * 12)


_LAYER_CASES = [
    (layers.SimpleRNN, {"units": 3}),
    (layers.SimpleRNN, {"units": 3, "activation": "relu", "return_sequences": True}),
    (layers.LSTM, {"units": 3}),
    (layers.LSTM, {"units": 3, "return_sequences": True, "go_backwards": True}),
    (layers.LSTM, {"units": 2, "return_state": True, "use_bias": False}),
    (layers.GRU, {"units": 3}),
    (layers.GRU, {"units": 3, "return_sequences": True, "return_state": True}),
    (layers.GRU, {"units": 3, "reset_after": False, "go_backwards": True}),
    (layers.LSTM, {"units": 2, "activation": "softsign", "return_sequences": True}),
]


@pytest.mark.parametrize("cls, kwargs", _LAYER_CASES)
def test_run_layer_test(cls, kwargs):
    u = kwargs["units"]
    out = (2, 4, u) if kwargs.get("return_sequences") else (2, u)
    n_states = 2 if cls is layers.LSTM else 1
    expected = [out] + [(2, u)] * n_states if kwargs.get("return_state") else out
    run_layer_test(cls, kwargs, input_shape=(2, 4, 3), expected_output_shape=expected,
                   expected_num_trainable_weights=3 if kwargs.get("use_bias", True) else 2,
                   expected_num_non_trainable_weights=0, supports_masking=True)


def _random_layer(cls, kwargs, x, seed=0):
    layer = cls(**kwargs)
    layer(x[:, :1])
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * 0.5
                       for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("cls, kwargs", _LAYER_CASES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_step_by_step_keras_equations(cls, kwargs, masked, with_state):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    layer = _random_layer(cls, kwargs, x)
    mask = rng.random((3, 5)) > 0.3 if masked else None
    n_states = 2 if cls is layers.LSTM else 1
    states = ([rng.standard_normal((3, kwargs["units"])).astype("float32")
               for _ in range(n_states)] if with_state else None)
    got = layer(x, mask=mask, initial_state=states)
    act = {"relu": lambda a: np.maximum(a, 0), "softsign": _softsign}.get(
        kwargs.get("activation"), np.tanh)
    want = reference(layer, x, mask, states, act=act)
    for g, w in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-5)


@pytest.mark.parametrize("cls, kwargs", _LAYER_CASES)
def test_fused_and_composed_paths_agree(cls, kwargs, monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 4)).astype("float32")
    mask = rng.random((2, 6)) > 0.3
    layer = _random_layer(cls, {**kwargs, "return_state": True}, x)
    fused = layer(x, mask=mask)
    monkeypatch.setattr(type(layer.cell), "fused_sequence", lambda self, *a, **k: None)
    composed = layer(x, mask=mask)
    for a, b in zip(fused, composed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize("cls, kwargs", [
    (layers.SimpleRNN, {"units": 2, "return_sequences": True}),
    (layers.LSTM, {"units": 2, "return_sequences": True, "return_state": True}),
    (layers.LSTM, {"units": 2, "go_backwards": True, "return_state": True}),
    (layers.GRU, {"units": 2, "return_state": True}),
    (layers.GRU, {"units": 2, "reset_after": False, "return_sequences": True,
                  "go_backwards": True}),
    (layers.LSTM, {"units": 2, "activation": "softsign", "return_state": True}),
])
def test_gradients_wrt_inputs_states_and_weights_with_mask(cls, kwargs):
    rng = np.random.default_rng(3)
    n_states = 2 if cls is layers.LSTM else 1
    with floatx_scope("float64"):
        layer = cls(**kwargs, dtype="float64")
        x = rng.standard_normal((2, 4, 3))
        layer(x)
        mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0]], dtype=bool)
        states = [rng.standard_normal((2, 2)) for _ in range(n_states)]

        def fn(x, *rest):
            out = layer(x, mask=mask, initial_state=list(rest[:n_states]))
            outs = out if isinstance(out, list) else [out]
            return ops.concatenate([ops.reshape(o, (-1,)) for o in outs], axis=0)

        # The layer's own Variables are perturbed in place by check_gradients.
        check_gradients(fn, [x, *states, *layer.trainable_weights])


def test_masked_steps_repeat_previous_output_in_sequences():
    x = np.random.default_rng(4).standard_normal((1, 4, 2)).astype("float32")
    layer = layers.GRU(3, return_sequences=True)
    out = layer(x, mask=np.array([[True, False, True, False]])).numpy()
    np.testing.assert_array_equal(out[0, 1], out[0, 0])
    np.testing.assert_array_equal(out[0, 3], out[0, 2])


def test_post_padding_with_mask_equals_unpadded_sequence():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 2)).astype("float32")
    padded = np.concatenate([x, np.zeros((1, 2, 2), "float32")], axis=1)
    layer = layers.LSTM(4)
    np.testing.assert_allclose(layer(padded, mask=np.array([[1, 1, 1, 0, 0]], bool)).numpy(),
                               layer(x).numpy(), atol=1e-6)


def test_dropout_only_in_training_and_gradients_flow():
    x = np.ones((8, 5, 3), "float32")
    layer = layers.LSTM(4, dropout=0.5, recurrent_dropout=0.5, seed=1)
    a = layer(x, training=False).numpy()
    np.testing.assert_array_equal(a, layer(x, training=False).numpy())
    b = layer(x, training=True)
    assert not np.allclose(a, b.numpy())
    grads = lamina.backend.autodiff.gradients(ops.sum(b), layer.trainable_weights)
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in grads)


def test_stateful_is_refused_with_a_clear_message():
    with pytest.raises(NotImplementedError, match="stateful=True"):
        layers.LSTM(3, stateful=True)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_invalid_units(bad):
    with pytest.raises(ValueError, match=f"units={bad!r}"):
        layers.GRU(bad)


def test_wrong_rank_is_refused():
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.SimpleRNN(2)(np.ones((2, 3), "float32"))


def test_config_has_keras_arguments():
    config = layers.GRU(5, reset_after=False, return_sequences=True).get_config()
    for key in ("units", "activation", "recurrent_activation", "use_bias", "reset_after",
                "kernel_initializer", "recurrent_initializer", "bias_initializer",
                "dropout", "recurrent_dropout", "return_sequences", "return_state",
                "go_backwards", "stateful", "unroll", "seed"):
        assert key in config
    assert "cell" not in config
    assert config["reset_after"] is False
    assert layers.LSTM(2).get_config()["unit_forget_bias"] is True


def test_generic_rnn_with_a_cell():
    cell = layers.LSTMCell(3)
    layer = layers.RNN(cell, return_sequences=True)
    x = np.random.default_rng(6).standard_normal((2, 4, 2)).astype("float32")
    out = layer(x)
    assert out.shape == (2, 4, 3)
    clone = layers.RNN.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), out.numpy(), atol=1e-6)


def test_functional_model_with_initial_state_and_training_step():
    inputs = lamina.Input((5, 3))
    h0 = lamina.Input((4,))
    c0 = lamina.Input((4,))
    seq, h, c = layers.LSTM(4, return_sequences=True, return_state=True)(
        inputs, initial_state=[h0, c0])
    out = layers.Dense(2)(layers.GRU(3)(seq))
    model = lamina.Model([inputs, h0, c0], out)
    rng = np.random.default_rng(7)
    data = [rng.standard_normal((6, 5, 3)).astype("float32"),
            rng.standard_normal((6, 4)).astype("float32"),
            rng.standard_normal((6, 4)).astype("float32")]
    model.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(data, rng.standard_normal((6, 2)).astype("float32"), epochs=1, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.GRU, layers.LSTM])
@pytest.mark.parametrize("dtype", ["bool", "int32"])
def test_non_float_sequences_are_promoted_to_the_kernel_dtype(cls, dtype):
    # Keras's matmul promotes a bool/int sequence against the float32 kernel.
    x = np.random.default_rng(0).integers(0, 2, size=(2, 4, 5)).astype(dtype)
    layer = cls(3)
    out = layer(x)
    assert str(out.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(out), np.asarray(layer(x.astype("float32"))),
                               rtol=1e-6)
