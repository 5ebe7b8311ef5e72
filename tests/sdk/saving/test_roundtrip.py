"""Every layer type survives to_json/from_json, .keras, .weights.h5 and legacy .h5.

One table: each row builds a small model around one layer type. A layer added later is
covered by adding one row.
"""

import numpy as np
import pytest

import lamina
from lamina import layers


def seq(*stack, shape, dtype="float32"):
    return lamina.Sequential([lamina.Input(shape, dtype=dtype), *stack])


def functional(fn, *shapes):
    inputs = [lamina.Input(s) for s in shapes]
    return lamina.Model(inputs if len(inputs) > 1 else inputs[0], fn(*inputs))


ROWS = {
    "dense": lambda: seq(layers.Dense(3, activation="relu"), layers.Dense(2), shape=(4,)),
    "dense_regularized": lambda: seq(layers.Dense(3, use_bias=False, kernel_regularizer="l2",
                                          kernel_constraint="max_norm"), shape=(4,)),
    "activation": lambda: seq(layers.Dense(3), layers.Activation("tanh"), shape=(4,)),
    "dropout": lambda: seq(layers.Dropout(0.5), layers.Dense(2), shape=(4,)),
    "reshape_flatten": lambda: seq(layers.Reshape((2, 2)), layers.Flatten(), layers.Dense(2),
                           shape=(4,)),
    "conv1d": lambda: seq(layers.Conv1D(2, 3, activation="relu"), shape=(6, 2)),
    "conv2d": lambda: seq(layers.Conv2D(3, 3, padding="same"), layers.MaxPooling2D(2),
                          shape=(6, 6, 2)),
    "conv2d_transpose": lambda: seq(layers.Conv2DTranspose(2, 3, strides=2), shape=(4, 4, 2)),
    "depthwise_conv2d": lambda: seq(layers.DepthwiseConv2D(3), shape=(6, 6, 2)),
    "separable_conv2d": lambda: seq(layers.SeparableConv2D(2, 3), shape=(6, 6, 2)),
    "pooling": lambda: seq(layers.AveragePooling2D(2), layers.GlobalMaxPooling2D(),
                           shape=(6, 6, 2)),
    "pooling1d": lambda: seq(layers.MaxPooling1D(2), layers.GlobalAveragePooling1D(), shape=(6, 2)),
    "batch_normalization": lambda: seq(layers.Dense(4), layers.BatchNormalization(), shape=(4,)),
    "layer_normalization": lambda: seq(layers.LayerNormalization(), shape=(4,)),
    "group_normalization": lambda: seq(layers.GroupNormalization(groups=2), shape=(4,)),
    "unit_normalization": lambda: seq(layers.UnitNormalization(), shape=(4,)),
    "embedding": lambda: seq(layers.Embedding(10, 3), layers.Flatten(), shape=(5,), dtype="int32"),
    "simple_rnn": lambda: seq(layers.SimpleRNN(3), shape=(5, 2)),
    "lstm": lambda: seq(layers.LSTM(3, return_sequences=True), layers.LSTM(2), shape=(5, 2)),
    "gru": lambda: seq(layers.GRU(3), shape=(5, 2)),
    "gru_reset_before": lambda: seq(layers.GRU(3, reset_after=False), shape=(5, 2)),
    "bidirectional": lambda: seq(layers.Bidirectional(layers.LSTM(2)), shape=(5, 2)),
    "time_distributed": lambda: seq(layers.TimeDistributed(layers.Dense(2)), shape=(5, 2)),
    "masking": lambda: seq(layers.Masking(), layers.SimpleRNN(2), shape=(5, 2)),
    "activations": lambda: seq(layers.PReLU(), layers.LeakyReLU(), layers.ELU(), layers.ReLU(),
                       layers.Softmax(), shape=(4,)),
    "rescaling": lambda: seq(layers.Rescaling(2.0, offset=1.0), shape=(4,)),
    "resampling": lambda: seq(layers.ZeroPadding2D(1), layers.UpSampling2D(2), layers.Cropping2D(1),
                      shape=(3, 3, 1)),
    "permute_repeat": lambda: seq(layers.Permute((2, 1)), layers.Flatten(), layers.RepeatVector(2),
                          shape=(3, 2)),
    "noise": lambda: seq(layers.GaussianNoise(0.1), layers.GaussianDropout(0.1),
                 layers.SpatialDropout1D(0.1), shape=(3, 2)),
    "merging": lambda: functional(lambda a, b: layers.Concatenate()([
        layers.Add()([a, b]), layers.Subtract()([a, b]), layers.Multiply()([a, b]),
        layers.Average()([a, b]), layers.Maximum()([a, b]), layers.Minimum()([a, b])]),
        (4,), (4,)),
    "dot": lambda: functional(lambda a, b: layers.Dot(axes=1)([a, b]), (4,), (4,)),
    "shared_layer": lambda: functional(lambda a: (lambda d: d(d(a)))(layers.Dense(4)), (4,)),
    "attention": lambda: functional(lambda q, v: layers.Attention()([q, v]), (3, 4), (5, 4)),
    "multi_head_attention": lambda: functional(
        lambda q, v: layers.MultiHeadAttention(num_heads=2, key_dim=3)(q, v), (3, 4), (5, 4)),
    "nested_sequential": lambda: functional(lambda a: lamina.Sequential(
        [layers.Dense(3), layers.Dense(2)])(a), (4,)),
}


def _data(model, rng):
    out = []
    for t in model.inputs:
        shape = (3, *t.shape[1:])
        if np.dtype(t.dtype).kind in "iu":
            out.append(rng.integers(0, 10, size=shape).astype(t.dtype))
        else:
            out.append(rng.normal(size=shape).astype(t.dtype))
    return out if len(out) > 1 else out[0]


@pytest.fixture(params=sorted(ROWS))
def case(request):
    rng = np.random.default_rng(0)
    model = ROWS[request.param]()
    for variable in model.weights:
        if np.dtype(variable.dtype).kind == "f":
            variable.assign(rng.uniform(0.5, 1.5, size=variable.shape).astype(variable.dtype))
    model.compile(optimizer="adam", loss="mse")
    x = _data(model, rng)
    return model, x, np.asarray(model.predict(x, verbose=0))


def _same(model, x, expected):
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, atol=1e-6)


def test_json(case):
    model, x, expected = case
    clone = lamina.models.model_from_json(model.to_json())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    _same(clone, x, expected)


def test_keras_file(case, tmp_path):
    model, x, expected = case
    model.save(tmp_path / "m.keras")
    loaded = lamina.models.load_model(tmp_path / "m.keras")
    _same(loaded, x, expected)
    assert type(loaded.optimizer) is type(model.optimizer)


def test_weights_file(case, tmp_path):
    model, x, expected = case
    model.save_weights(tmp_path / "m.weights.h5")
    clone = lamina.models.model_from_json(model.to_json())
    clone.load_weights(tmp_path / "m.weights.h5")
    _same(clone, x, expected)


def test_legacy_h5(case, tmp_path):
    model, x, expected = case
    model.save(tmp_path / "m.h5")
    _same(lamina.models.load_model(tmp_path / "m.h5"), x, expected)
    clone = lamina.models.model_from_json(model.to_json())
    clone.load_weights(tmp_path / "m.h5")
    _same(clone, x, expected)


def test_optimizer_state_survives(tmp_path):
    model = ROWS["batch_normalization"]()
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 4)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for path in ("m.keras", "m.h5"):
        model.save(tmp_path / path)
        loaded = lamina.models.load_model(tmp_path / path)
        for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        # Training continues identically from the restored state.
        twin = lamina.models.load_model(tmp_path / path)
        loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        twin.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        for a, b in zip(loaded.get_weights(), twin.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations.numpy()) == 6  # 4 saved + 2 more


def test_compile_false_skips_optimizer(tmp_path):
    model = ROWS["dense"]()
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.keras")
    loaded = lamina.models.load_model(tmp_path / "m.keras", compile=False)
    assert not loaded.compiled


def test_models_save_model_writes_a_file_load_model_reads(tmp_path):
    import lamina

    model = lamina.Sequential([lamina.Input((3,)), lamina.layers.Dense(2)])
    path = tmp_path / "m.keras"
    lamina.models.save_model(model, path)
    loaded = lamina.models.load_model(path)
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
