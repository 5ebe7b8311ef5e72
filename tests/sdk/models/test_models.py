"""Sequential, functional and subclassed models: construction, calls, weights, summary."""

import io

import numpy as np
import pytest

import lamina
import lamina as keras
from lamina import layers


def mlp(hidden=8, n_in=4, n_out=3):
    return lamina.Sequential([lamina.Input((n_in,)), layers.Dense(hidden, activation="relu"),
                              layers.Dense(n_out)])


def test_sequential_builds_from_input_and_counts_params():
    model = mlp()
    assert model.built
    # Keras: 4*8+8 + 8*3+3 = 67
    assert model.count_params() == 67
    assert len(model.layers) == 2
    assert model(np.ones((5, 4))).shape == (5, 3)


def test_sequential_input_shape_kwarg_and_lazy_build():
    model = lamina.Sequential([layers.Dense(2, input_shape=(3,))])
    assert model.built and model.count_params() == 8
    lazy = lamina.Sequential([layers.Dense(2)])
    assert not lazy.built
    lazy(np.ones((1, 5)))
    assert lazy.count_params() == 12


def test_sequential_add_pop():
    model = lamina.Sequential()
    model.add(lamina.Input((3,)))
    model.add(layers.Dense(4))
    model.add(layers.Dense(1))
    assert model.outputs[0].shape == (None, 1)
    popped = model.pop()
    assert isinstance(popped, layers.Dense) and model.outputs[0].shape == (None, 4)
    with pytest.raises(ValueError, match="Only instances of `lamina.layers.Layer`"):
        model.add("dense")


def test_functional_multi_input_output_shared_layer():
    a = lamina.Input((4,), name="a")
    b = lamina.Input((4,), name="b")
    shared = layers.Dense(5, name="shared")
    ha, hb = shared(a), shared(b)
    merged = layers.Dense(2, name="head")(ha)
    other = layers.Dense(1, name="other")(hb)
    model = lamina.Model([a, b], [merged, other])
    assert isinstance(model, lamina.models.Functional)
    assert [la.name for la in model.layers] == ["a", "b", "shared", "head", "other"]
    # shared: 4*5+5=25, head: 5*2+2=12, other: 5+1=6
    assert model.count_params() == 43
    xa, xb = np.ones((3, 4)), np.zeros((3, 4))
    out1, out2 = model([xa, xb])
    np.testing.assert_allclose(out2.data, np.broadcast_to(shared.bias.data @ model.get_layer(
        "other").kernel.data + model.get_layer("other").bias.data, (3, 1)), rtol=1e-6)
    by_name = model({"a": xa, "b": xb})
    np.testing.assert_allclose(by_name[0].data, out1.data)


def test_functional_disconnected_graph_is_an_error():
    a, b = lamina.Input((2,)), lamina.Input((2,))
    out = layers.Dense(1)(b)
    with pytest.raises(ValueError, match="Graph disconnected"):
        lamina.Model(a, out)


def test_functional_wrong_input_shape_is_named():
    inp = lamina.Input((4,))
    model = lamina.Model(inp, layers.Dense(1)(inp))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4\), found shape=\(2, 5\)"):
        model(np.ones((2, 5)))


def test_subclassed_model():
    class Net(lamina.Model):
        def __init__(self):
            super().__init__(name="net")
            self.hidden = layers.Dense(4, activation="relu")
            self.out = layers.Dense(1)

        def call(self, inputs, training=None):
            return self.out(self.hidden(inputs))

    net = Net()
    assert net(np.ones((2, 3))).shape == (2, 1)
    assert len(net.weights) == 4 and net.count_params() == 3 * 4 + 4 + 4 + 1
    net.compile(optimizer="sgd", loss="mse")
    history = net.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_get_set_weights_checks_shapes():
    model = mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 8), (8,), (8, 3), (3,)]
    model.set_weights([np.zeros_like(w) for w in weights])
    assert all(np.all(w == 0) for w in model.get_weights())
    with pytest.raises(ValueError, match="expecting 4 weights"):
        model.set_weights(weights[:2])
    with pytest.raises(ValueError, match=r"\(4, 8\) is not compatible with provided weight shape"):
        model.set_weights([np.zeros((5, 8))] + weights[1:])


def test_get_layer():
    model = mlp()
    assert model.get_layer(index=0) is model.layers[0]
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")


def test_summary_totals_match_keras():
    model = lamina.Sequential([lamina.Input((784,)), layers.Dense(512, activation="relu"),
                               layers.Dropout(0.2), layers.Dense(10)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    # Keras prints: Total params: 407,050 (1.55 MB)
    assert "Total params: 407,050 (1.55 MB)" in text
    assert "Trainable params: 407,050 (1.55 MB)" in text
    assert "Non-trainable params: 0 (0.00 B)" in text
    assert "(None, 512)" in text and "dense (Dense)" in text or "Dense)" in text


def test_trainable_false_freezes():
    model = mlp()
    model.layers[0].trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.compile(optimizer="sgd", loss="mse")
    frozen = model.layers[0].get_weights()
    model.fit(np.ones((4, 4)), np.ones((4, 3)), verbose=0)
    for a, b in zip(frozen, model.layers[0].get_weights()):
        assert np.array_equal(a, b)


def test_progbar_verbose2_line(capsys):
    model = mlp()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(np.ones((64, 4)), np.ones((64, 3)), epochs=2, batch_size=32, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2"
    assert out[1].startswith("2/2 - ") and " - loss: " in out[1]
    per_step = out[1].split(" - ")[2]
    assert per_step.endswith("/step") and per_step != "0us/step", per_step
    keys = [part.split(":")[0] for part in out[1].split(" - ")[3:]]
    assert keys == sorted(keys)


def test_progbar_tty_uses_keras_bar():
    from lamina.utils.progbar import Progbar

    stream = io.StringIO()
    bar = Progbar(10, stream=stream, dynamic=True)
    bar.update(10, [("loss", 0.5)], finalize=True)
    text = stream.getvalue()
    assert "\x1b[1m10/10\x1b[0m" in text and "━" * 20 in text and "loss: 0.5000" in text


def test_progbar_eta_formats_like_keras():
    from lamina.utils.progbar import format_eta, format_time_per_step, format_value

    assert [format_eta(s) for s in (59.9, 125.7, 3725.9)] == ["59s", "2:05", "1:02:05"]
    assert [format_time_per_step(s) for s in (2.0, 0.004, 0.0000042)] == [
        "2s/step", "4ms/step", "4us/step"]
    assert format_value(0.5, 1) == "0.5000" and format_value(0.0001, 1) == "1.0000e-04"


def test_a_model_may_start_from_intermediate_tensors():
    """Keras's Model(inputs=<intermediate tensor>, ...): the graph stops at the given inputs
    (the structured-data guide builds its inference head this way)."""
    inputs = keras.Input(shape=(4,))
    encoded = keras.layers.Dense(3, name="encoder")(inputs)
    outputs = keras.layers.Dense(1, name="head")(encoded)
    head = keras.Model(encoded, outputs)
    assert [la.name for la in head.layers] == ["head"]
    assert head.count_params() == 4
    data = np.ones((2, 3), dtype="float32")
    head_layer = head.layers[0]
    np.testing.assert_allclose(head.predict(data, verbose=0),
                               data @ head_layer.kernel.numpy() + head_layer.bias.numpy(),
                               rtol=1e-6)


def test_the_outer_training_flag_wins_over_a_recorded_one():
    inputs = keras.Input(shape=(8,))
    outputs = keras.layers.Dropout(0.5)(inputs, training=True)
    model = keras.Model(inputs, outputs)
    data = np.ones((4, 8), dtype="float32")
    np.testing.assert_array_equal(model.predict(data, verbose=0), data)
    assert (model(data, training=True).numpy() == 0).any()
