"""compile/fit/evaluate/predict semantics (keras-notes §1.3) and bad-input errors."""

import numpy as np
import pytest

import lamina
from lamina import layers


def make_model(n_in=4, n_out=1, seed=0):
    lamina.utils.set_random_seed(seed)
    return lamina.Sequential([lamina.Input((n_in,)), layers.Dense(8, activation="tanh"),
                              layers.Dense(n_out)])


def data(n=50, n_in=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype("float32")
    y = (x @ rng.standard_normal((n_in, 1))).astype("float32")
    return x, y


def test_fit_reduces_loss_and_returns_history():
    model = make_model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = data(200)
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert history is model.history
    assert sorted(history.history) == ["loss", "mean_absolute_error"] or sorted(
        history.history) == ["loss", "mae"]
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.epoch == list(range(20))
    assert history.params["epochs"] == 20 and history.params["steps"] == 13


def test_epochs_is_final_index():
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    history = model.fit(x, y, epochs=5, initial_epoch=2, verbose=0)
    assert history.epoch == [2, 3, 4]


def test_validation_split_takes_last_fraction_before_shuffling():
    model = make_model()
    model.compile(optimizer=lamina.optimizers.SGD(learning_rate=0.0), loss="mse")
    x, y = data(50)
    history = model.fit(x, y, epochs=1, validation_split=0.2, shuffle=True, verbose=0)
    expected = model.evaluate(x[40:], y[40:], verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][0], expected, rtol=1e-6)
    assert history.params["steps"] == 2  # 40 training samples, batch 32


def test_validation_data_and_freq():
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data()
    history = model.fit(x, y, epochs=4, validation_data=(x[:10], y[:10]), validation_freq=2,
                        verbose=0)
    assert len(history.history["loss"]) == 4
    assert len(history.history["val_loss"]) == 2


def test_evaluate_return_dict_and_predict():
    model = make_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = data()
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(result) == {"loss", *[k for k in result if k != "loss"]} and len(result) == 2
    values = model.evaluate(x, y, verbose=0)
    assert isinstance(values, list) and len(values) == 2
    preds = model.predict(x, batch_size=7, verbose=0)
    assert preds.shape == (50, 1)
    np.testing.assert_allclose(preds, model(x).data, rtol=1e-6)
    np.testing.assert_allclose(result["loss"], np.mean((preds - y) ** 2), rtol=1e-5)


def test_train_on_batch_matches_one_fit_step():
    x, y = data(16)
    a, b = make_model(seed=1), make_model(seed=1)
    for m in (a, b):
        m.compile(optimizer="sgd", loss="mse")
    a.train_on_batch(x, y)
    b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert isinstance(a.test_on_batch(x, y), float)
    assert a.predict_on_batch(x).shape == (16, 1)


def test_same_seed_bit_identical_training():
    x, y = data(64)
    results = []
    for _ in range(2):
        model = lamina.Sequential([lamina.Input((4,)), layers.Dense(8, activation="relu"),
                                   layers.Dropout(0.3), layers.Dense(1)])
        lamina.utils.set_random_seed(123)
        model = lamina.Sequential([lamina.Input((4,)), layers.Dense(8, activation="relu"),
                                   layers.Dropout(0.3), layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        results.append(model.get_weights())
    for wa, wb in zip(*results):
        np.testing.assert_array_equal(wa, wb)


def test_sample_weight_and_class_weight():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4)).astype("float32")
    y = (rng.random(20) > 0.5).astype("float32")[:, None]
    model = make_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    sw = np.where(y[:, 0] > 0, 3.0, 1.0).astype("float32")
    weighted = model.evaluate(x, y, sample_weight=sw, batch_size=20, verbose=0)
    plain = model.evaluate(x, y, batch_size=20, verbose=0)
    assert weighted != plain
    lr0 = lamina.optimizers.SGD(learning_rate=0.0)
    model.compile(optimizer=lr0, loss="binary_crossentropy")
    h = model.fit(x, y, class_weight={0: 1.0, 1: 3.0}, batch_size=20, epochs=1, verbose=0,
                  shuffle=False)
    np.testing.assert_allclose(h.history["loss"][0], weighted, rtol=1e-5)


def test_fit_before_compile():
    model = make_model()
    with pytest.raises(RuntimeError, match=r"must call `compile\(\)` before using `fit\(\)`"):
        model.fit(*data(), verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "adamm", "loss": "mse"}, "adamm"),
    ({"optimizer": "adam", "loss": "msee"}, "msee"),
    ({"optimizer": "adam", "loss": "mse", "metrics": ["accuracyy"]}, "accuracyy"),
])
def test_unknown_names_are_named(kwargs, match):
    model = make_model()
    with pytest.raises(ValueError, match=match):
        model.compile(**kwargs)


def test_length_mismatch_names_sizes():
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(50)
    with pytest.raises(ValueError, match=r"(?s)cardinality.*'x' sizes: 50.*'y' sizes: 49"):
        model.fit(x, y[:49], verbose=0)


def test_nan_in_data_is_refused():
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(10)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"`x` contains NaN or infinite values.*\(3, 2\)"):
        model.fit(x, y, verbose=0)


def test_finite_check_by_sum_falls_back_element_by_element():
    from lamina.models.data import check_finite

    big = np.full((4, 3), 1e308)  # finite, but its sum overflows
    check_finite((big,), "x")
    opposite = np.array([[np.inf, -np.inf]], np.float32)  # sums to NaN
    with pytest.raises(ValueError, match=r"`y` contains NaN.*\(0, 0\)"):
        check_finite((opposite,), "y")
    half = np.ones((5, 2), np.float16)
    half[4, 1] = np.inf
    with pytest.raises(ValueError, match=r"`x` contains NaN.*\(4, 1\)"):
        check_finite((half,), "x")
    check_finite((np.array([1 + 2j, 3 - 1j]),), "x")


def test_wrong_input_shape_named():
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4\), found shape=\(10, 3\)"):
        model.fit(np.ones((10, 3)), np.ones((10, 1)), verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size=0"),
    ({"epochs": -1}, "epochs=-1"),
    ({"validation_split": 1.5}, "validation_split=1.5"),
    ({"shuffle": "yes"}, "shuffle='yes'"),
])
def test_bad_fit_arguments(kwargs, match):
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=match):
        model.fit(*data(), verbose=0, **kwargs)


def test_multi_output_losses_weights_and_log_names():
    inp = lamina.Input((4,))
    h = layers.Dense(8, activation="relu")(inp)
    a = layers.Dense(1, name="reg")(h)
    b = layers.Dense(3, activation="softmax", name="cls")(h)
    model = lamina.Model(inp, [a, b])
    model.compile(optimizer="adam", loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                  loss_weights={"reg": 1.0, "cls": 0.5}, metrics={"cls": ["accuracy"]})
    x = np.random.default_rng(0).standard_normal((30, 4)).astype("float32")
    y_reg = x[:, :1]
    y_cls = (x[:, 1] > 0).astype("int64")
    history = model.fit(x, {"reg": y_reg, "cls": y_cls}, epochs=2, verbose=0)
    assert "cls_accuracy" in history.history and "loss" in history.history


def test_callback_hook_order_matches_keras():
    calls = []
    hooks = ["on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
             "on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
             "on_epoch_end", "on_train_end"]
    cb = lamina.callbacks.LambdaCallback(**{
        h: (lambda *a, _h=h, **k: calls.append(_h)) for h in hooks})
    model = make_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(8)
    model.fit(x, y, batch_size=8, epochs=1, validation_data=(x, y), callbacks=[cb], verbose=0)
    assert calls == hooks


def test_rank1_labels_meet_rank2_predictions_without_broadcasting():
    # Keras squeezes/expands labels (n,) against predictions (n, 1): the loss must not
    # become an (n, n) matrix that only learns the label prior.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    lamina.utils.set_random_seed(0)
    model = lamina.Sequential([lamina.Input((2,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=lamina.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.3
    assert history.history["accuracy"][-1] > 0.9


class _RecordingModel(lamina.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)
        self.seen = []
        self.extra = lamina.metrics.Mean(name="extra")

    def call(self, inputs):
        return self.dense(inputs)

    def train_step(self, data):
        self.seen.append(type(data).__name__ + str(len(data) if isinstance(data, tuple) else ""))
        self.extra.update_state(1.0)
        return super().train_step(data)


def test_train_step_receives_keras_packed_data_and_tracks_metric_attributes():
    model = _RecordingModel()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.fit(x, y, sample_weight=np.ones(4), batch_size=4, epochs=1, verbose=0)
    assert model.seen == ["tuple2", "tuple3"]
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics", "extra"]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert list(logs) == ["loss", "mae", "extra"] and logs["extra"] == 1.0


def test_layer_losses_are_reset_at_each_top_level_call():
    class Penalty(layers.Layer):
        def call(self, inputs):
            self.add_loss(lamina.ops.sum(inputs))
            return inputs

    inner = Penalty()
    model = lamina.Sequential([lamina.Input(shape=(2,)), inner, Penalty()])
    model(np.ones((1, 2), "float32"))
    model(np.ones((1, 2), "float32"))
    assert len(model.losses) == 2
    inner(np.zeros((1, 2), "float32"))
    assert [float(v) for v in inner.losses] == [0.0]


def test_subclass_built_functionally_keeps_its_methods():
    class Custom(lamina.Model):
        def describe(self):
            return "custom"

    inputs = lamina.Input(shape=(3,))
    model = Custom(inputs, layers.Dense(2)(inputs))
    assert isinstance(model, Custom) and isinstance(model, lamina.models.Functional)
    assert model.describe() == "custom" and model.output_shape == (None, 2)
    assert type(Custom(inputs, layers.Dense(1)(inputs))) is type(model)


def test_first_call_of_subclassed_model_counts_add_loss_once():
    class Penalty(layers.Layer):
        def call(self, inputs):
            self.add_loss(lamina.ops.sum(inputs))
            return inputs

    class Net(lamina.Model):
        def __init__(self):
            super().__init__()
            self.penalty = Penalty()
            self.dense = layers.Dense(1)

        def call(self, inputs):
            return self.dense(self.penalty(inputs))

    model = Net()
    model(np.ones((1, 2), "float32"))  # builds by a dummy call first
    assert [float(v) for v in model.losses] == [2.0]
