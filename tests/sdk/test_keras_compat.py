"""Keras 3 scripts, written the way the keras.io guides teach, run with ``import lamina as keras``.

Each test is one short user script (getting started, functional API, training and
evaluation, customizing ``fit``, writing layers/callbacks/metrics, saving, transfer
learning) and asserts what the script's author would check: shapes, a falling loss,
an accuracy threshold, or equality with a reference computation.
"""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina import layers, ops


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.utils.set_random_seed(1337)
    keras.backend.clear_session()
    yield


def _blobs(n=300, classes=3, dim=8, seed=0):
    """Well-separated Gaussian blobs: ``(x float32 (n, dim), y int64 (n,))``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(size=(n, dim))
    return x.astype("float32"), y


def _regression(n=256, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype("float32")
    w = rng.normal(size=(dim, 1)).astype("float32")
    return x, x @ w + 0.5


# -- getting started ------------------------------------------------------------------------
def test_sequential_with_input_and_add():
    model = keras.Sequential(name="blobs")
    model.add(keras.Input(shape=(8,)))
    model.add(layers.Dense(16, activation="relu"))
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = _blobs()
    history = model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    assert len(model.layers) == 2
    assert model.output_shape == (None, 3)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_mnist_mlp_from_keras_datasets():
    # keras.datasets.mnist downloads; the offline 5,000-image sample has its format.
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist_sample.load_data()
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (28, 28)
    x_train = x_train.reshape(-1, 784).astype("float32") / 255
    x_test = x_test.reshape(-1, 784).astype("float32") / 255
    y_train = keras.utils.to_categorical(y_train, 10)
    y_test = keras.utils.to_categorical(y_test, 10)
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=5, validation_split=0.1, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    assert score[1] > 0.85


# -- functional API --------------------------------------------------------------------------
def test_functional_multiple_inputs_and_outputs_with_dicts():
    title = keras.Input(shape=(12,), name="title")
    body = keras.Input(shape=(20,), name="body")
    tags = keras.Input(shape=(5,), name="tags")
    features = layers.concatenate([layers.Dense(8, activation="relu")(title),
                                   layers.Dense(8, activation="relu")(body), tags])
    priority = layers.Dense(1, name="priority")(features)
    department = layers.Dense(4, activation="softmax", name="department")(features)
    model = keras.Model(inputs=[title, body, tags], outputs=[priority, department])
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
              "department": keras.losses.CategoricalCrossentropy()},
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    rng = np.random.default_rng(0)
    data = {"title": rng.random((64, 12)), "body": rng.random((64, 20)),
            "tags": rng.integers(0, 2, (64, 5)).astype("float32")}
    targets = {"priority": rng.random((64, 1)),
               "department": keras.utils.to_categorical(rng.integers(0, 4, 64), 4)}
    history = model.fit(data, targets, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    priority_pred, department_pred = model.predict(data, verbose=0)
    assert priority_pred.shape == (64, 1) and department_pred.shape == (64, 4)
    np.testing.assert_allclose(department_pred.sum(axis=1), 1.0, rtol=1e-5)


def test_residual_connection_with_layers_add_and_concatenate():
    inputs = keras.Input(shape=(6,))
    x = layers.Dense(6, activation="relu")(inputs)
    x = layers.add([x, inputs])
    both = layers.concatenate([x, inputs], axis=-1)
    outputs = layers.Dense(1)(both)
    model = keras.Model(inputs, outputs)
    assert model.get_layer(index=-1).input.shape == (None, 12)
    x_data = np.ones((3, 6), dtype="float32")
    assert model.predict(x_data, verbose=0).shape == (3, 1)


def test_ops_and_operators_on_symbolic_tensors():
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b")
    total = keras.ops.add(a, b)
    scaled = total * 2.0 - b
    stacked = keras.ops.concatenate([scaled, keras.ops.square(a)], axis=-1)
    outputs = layers.Dense(1, kernel_initializer="ones", use_bias=False)(stacked)
    model = keras.Model([a, b], outputs)
    assert stacked.shape == (None, 6)
    av = np.arange(6, dtype="float32").reshape(2, 3)
    bv = np.ones((2, 3), dtype="float32")
    expected = ((av + bv) * 2 - bv).sum(1, keepdims=True) + (av ** 2).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict([av, bv], verbose=0), expected, rtol=1e-6)
    assert [la.name for la in model.layers] == ["a", "b", "dense"]
    with pytest.raises(NotImplementedError, match="keras.ops"):
        model.get_config()


def test_gradients_flow_through_symbolic_ops():
    inputs = keras.Input(shape=(4,))
    hidden = layers.Dense(8, name="hidden")(inputs)
    gated = keras.ops.relu(hidden) * keras.ops.sigmoid(hidden) + inputs[:, :1]
    outputs = layers.Dense(1)(keras.ops.mean(gated, axis=-1, keepdims=True) + gated)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = model.get_layer("hidden").get_weights()[0].copy()
    x, target = _regression()
    history = model.fit(x, target, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert not np.array_equal(before, model.get_layer("hidden").get_weights()[0])


def test_feature_extractor_from_get_layer_output():
    inputs = keras.Input(shape=(4,))
    x = layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    extractor = keras.Model(inputs=model.inputs, outputs=model.get_layer("hidden").output)
    every = keras.Model(inputs=model.inputs, outputs=[la.output for la in model.layers[1:]])
    data = np.random.default_rng(0).random((5, 4)).astype("float32")
    hidden = extractor.predict(data, verbose=0)
    kernel, bias = model.get_layer("hidden").get_weights()
    np.testing.assert_allclose(hidden, np.maximum(data @ kernel + bias, 0), rtol=1e-5, atol=1e-6)
    feats = every.predict(data, verbose=0)
    np.testing.assert_allclose(feats[1], model.predict(data, verbose=0), rtol=1e-6)


# -- writing your own layers and models ----------------------------------------------------
class Linear(layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True, name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True,
                                 name="b")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


def test_custom_layer_with_add_weight_and_ops():
    layer = Linear(4)
    y = layer(np.ones((2, 3), dtype="float32"))
    assert tuple(y.shape) == (2, 4)
    assert [w.shape for w in layer.weights] == [(3, 4), (4,)]
    assert len(layer.trainable_weights) == 2
    model = keras.Sequential([keras.Input(shape=(4,)), Linear(8), layers.Activation("relu"),
                              Linear(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x, target = _regression()
    history = model.fit(x, target, epochs=10, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


class ActivityRegularizer(layers.Layer):
    def __init__(self, rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.sum(inputs))
        return inputs


def test_layer_add_loss_is_reset_per_call_and_reaches_training():
    layer = ActivityRegularizer()
    layer(np.ones((2, 2), dtype="float32"))
    layer(np.ones((2, 2), dtype="float32"))
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.04)
    inputs = keras.Input(shape=(4,))
    outputs = layers.Dense(1)(ActivityRegularizer()(layers.Dense(4, activation="relu")(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x, target = _regression()
    model.fit(x, target, epochs=1, verbose=0)
    assert len(model.losses) == 1


class MLPBlock(keras.Model):
    def __init__(self, hidden=16, classes=3):
        super().__init__()
        self.hidden = layers.Dense(hidden, activation="relu")
        self.dropout = layers.Dropout(0.1)
        self.classifier = layers.Dense(classes)

    def call(self, inputs, training=False):
        x = self.hidden(inputs)
        x = self.dropout(x, training=training)
        return self.classifier(x)


def test_subclassed_model_with_logits_and_from_logits_loss():
    model = MLPBlock()
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    x, y = _blobs()
    model.fit(x, y, batch_size=32, epochs=10, verbose=0)
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(results) == {"loss", "sparse_categorical_accuracy"}
    assert results["sparse_categorical_accuracy"] > 0.9
    logits = model.predict(x[:4], verbose=0)
    assert logits.shape == (4, 3) and not np.allclose(logits.sum(axis=1), 1.0)
    assert len(model.trainable_weights) == 4


@keras.saving.register_keras_serializable(package="compat")
class ScaledDense(layers.Layer):
    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale
        self.dense = layers.Dense(units)

    def call(self, inputs):
        return ops.multiply(self.dense(inputs), self.scale)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "scale": self.scale})
        return config


def test_custom_layer_config_register_and_save_load_keras(tmp_path):
    inputs = keras.Input(shape=(5,))
    outputs = ScaledDense(3, scale=0.5, name="scaled")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    layer = ScaledDense.from_config(model.get_layer("scaled").get_config())
    assert (layer.units, layer.scale) == (3, 0.5)
    path = tmp_path / "custom.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.get_layer("scaled"), ScaledDense)
    data = np.random.default_rng(0).random((4, 5)).astype("float32")
    np.testing.assert_allclose(restored.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-6)
    by_name = keras.models.load_model(path, custom_objects={"ScaledDense": ScaledDense})
    assert by_name.get_layer("scaled").scale == 0.5


# -- training and evaluation -----------------------------------------------------------------
def _custom_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


class HuberLike(keras.losses.Loss):
    def __init__(self, delta=1.0, name="huber_like", **kwargs):
        super().__init__(name=name, **kwargs)
        self.delta = delta

    def call(self, y_true, y_pred):
        error = ops.abs(y_true - y_pred)
        quadratic = ops.minimum(error, self.delta)
        return ops.mean(0.5 * ops.square(quadratic) + self.delta * (error - quadratic), axis=-1)


@pytest.mark.parametrize("loss", [_custom_mse, HuberLike()], ids=["function", "subclass"])
def test_custom_loss(loss):
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss)
    x, target = _regression()
    history = model.fit(x, target, epochs=10, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]


class CategoricalTruePositives(keras.metrics.Metric):
    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), initializer="zeros", name="ctp")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
        values = ops.equal(ops.cast(y_true, "int32"), ops.cast(y_pred, "int32"))
        values = ops.cast(values, "float32")
        if sample_weight is not None:
            values = ops.multiply(values, ops.cast(sample_weight, "float32"))
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives


def test_custom_metric_with_add_variable():
    metric = CategoricalTruePositives()
    metric.update_state(np.array([[0], [1], [2]]), np.eye(3)[[0, 1, 0]])
    assert float(metric.result()) == 2.0
    metric.reset_state()
    assert float(metric.result()) == 0.0
    model = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[CategoricalTruePositives()])
    x, y = _blobs(n=96)
    history = model.fit(x, y.reshape(-1, 1), batch_size=32, epochs=2, verbose=0)
    assert 0 <= history.history["categorical_true_positives"][-1] <= 96
    results = model.evaluate(x, y.reshape(-1, 1), return_dict=True, verbose=0)
    expected = np.sum(np.argmax(model.predict(x, verbose=0), axis=1) == y)
    assert results["categorical_true_positives"] == expected


def test_evaluate_return_dict_matches_list():
    model = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = _blobs(n=64)
    model.fit(x, y, epochs=1, verbose=0)
    as_list = model.evaluate(x, y, verbose=0)
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(as_dict) == ["loss", "accuracy"]
    np.testing.assert_allclose(list(as_dict.values()), as_list)


def test_learning_rate_schedule_in_optimizer():
    schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=0.1, decay_steps=4, decay_rate=0.5, staircase=True)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    x, target = _regression(n=64)
    model.fit(x, target, batch_size=16, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 8
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 * 0.5 ** 2)


class LossHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.batch_losses, self.epochs = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_losses.append(logs["loss"])

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        if logs["loss"] < 0.05:
            self.model.stop_training = True


def test_custom_callback_records_and_stops_training():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    x, target = _regression(n=128)
    callback = LossHistory()
    history = model.fit(x, target, batch_size=32, epochs=200, verbose=0, callbacks=[callback])
    assert len(callback.batch_losses) == 4 * len(callback.epochs)
    assert len(callback.epochs) < 200
    assert history.history["loss"][-1] < 0.05
    assert all(isinstance(v, float) for v in callback.batch_losses)


# -- customizing what happens in fit --------------------------------------------------------
class CustomStepModel(keras.Model):
    def train_step(self, data):
        x, y = data
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = keras.backend.gradients(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_custom_train_step_with_compute_loss():
    inputs = keras.Input(shape=(4,))
    outputs = layers.Dense(1)(layers.Dense(8, activation="relu")(inputs))
    model = CustomStepModel(inputs, outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, target = _regression()
    history = model.fit(x, target, epochs=5, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["mae"][-1] < history.history["mae"][0]


class OwnTrackersModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")

    def call(self, inputs):
        return self.dense(inputs)

    def train_step(self, data):
        x, y = data
        y_pred = self(x, training=True)
        loss = ops.mean(ops.square(y_pred - y))
        grads = keras.backend.gradients(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        self.loss_tracker.update_state(ops.mean(ops.square(y_pred - y)))
        self.mae_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_custom_train_step_with_own_metrics_and_no_compiled_loss():
    model = OwnTrackersModel()
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    x, target = _regression()
    history = model.fit(x, target, epochs=5, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses == sorted(losses, reverse=True)
    # The trackers are reset each epoch: the last epoch's loss is that epoch's mean only.
    assert losses[-1] < 0.5 * losses[0]
    results = model.evaluate(x, target, verbose=0, return_dict=True)
    assert set(results) == {"loss", "mae"}


# -- transfer learning ---------------------------------------------------------------------
def test_freeze_base_then_fine_tune():
    base = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                             layers.BatchNormalization()], name="base")
    inputs = keras.Input(shape=(8,))
    outputs = layers.Dense(3, activation="softmax")(base(inputs, training=False))
    model = keras.Model(inputs, outputs)
    base.trainable = False
    assert len(base.trainable_weights) == 0 and len(model.trainable_weights) == 2
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    frozen = [w.copy() for w in base.get_weights()]
    x, y = _blobs()
    model.fit(x, y, epochs=3, verbose=0)
    for before, after in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(before, after)
    base.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    assert len(model.trainable_weights) == 6
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], base.get_weights()[0])


def test_clone_model_has_same_architecture_and_new_weights():
    inputs = keras.Input(shape=(4,))
    outputs = layers.Dense(2, name="out")(layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    clone = keras.models.clone_model(model)
    assert [type(la) for la in clone.layers] == [type(la) for la in model.layers]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])
    clone.set_weights(model.get_weights())
    data = np.ones((2, 4), dtype="float32")
    np.testing.assert_allclose(clone.predict(data, verbose=0), model.predict(data, verbose=0))
    seq = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(2)])
    assert keras.models.clone_model(seq).output_shape == (None, 2)


def test_model_summary_lists_layers_and_params():
    model = keras.Sequential([keras.Input(shape=(784,)), layers.Dense(64, activation="relu",
                              name="hidden"), layers.Dense(10, name="logits")], name="mlp")
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "hidden (Dense)" in text and "logits (Dense)" in text
    assert "50,890" in text and "Total params" in text
    assert model.count_params() == 784 * 64 + 64 + 64 * 10 + 10


# -- utilities --------------------------------------------------------------------------------
def test_to_categorical():
    one_hot = keras.utils.to_categorical([0, 2, 1, 2], num_classes=3)
    np.testing.assert_array_equal(one_hot, np.eye(3)[[0, 2, 1, 2]])
    assert one_hot.dtype == np.float32
    assert keras.utils.to_categorical(np.array([[1], [0]])).shape == (2, 2)


def test_set_random_seed_makes_training_reproducible():
    def run():
        keras.utils.set_random_seed(42)
        model = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(8, activation="relu"),
                                  layers.Dropout(0.5), layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x, y = _blobs(n=64)
        model.fit(x, y, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_backend_namespace():
    assert keras.backend.floatx() == "float32"
    assert keras.backend.epsilon() == pytest.approx(1e-7)
    assert keras.backend.image_data_format() == "channels_last"
    assert layers.Dense(2).name == "dense"
    assert layers.Dense(2).name == "dense_1"
    keras.backend.clear_session()
    assert layers.Dense(2).name == "dense"


@pytest.mark.parametrize("name, shape, classes", [
    ("mnist_sample", (28, 28), 10), ("digits", (8, 8), 10), ("iris", (4,), 3)])
def test_datasets_load_data(name, shape, classes):
    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    assert x_train.shape[1:] == shape and x_test.shape[1:] == shape
    assert len(x_train) == len(y_train) and len(x_test) == len(y_test)
    assert len(x_train) > len(x_test) > 0
    assert set(np.unique(np.concatenate([y_train, y_test]))) == set(range(classes))


def test_top_level_and_utils_aliases():
    assert isinstance(keras.version(), str)
    assert isinstance(keras.Input(shape=(2,)), keras.KerasTensor)
    assert keras.Variable(np.zeros(2)).shape == (2,)
    assert keras.utils.register_keras_serializable is keras.saving.register_keras_serializable

    @keras.utils.register_keras_serializable(package="compat_utils")
    class Doubler(layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    config = keras.utils.serialize_keras_object(Doubler(name="twice"))
    assert keras.utils.deserialize_keras_object(config).name == "twice"


def test_variable_takes_keras_constructor_arguments():
    v = keras.Variable(initializer="ones", shape=(2, 3), dtype="float32", name="w",
                        aggregation="mean", synchronization="on_read", autocast=False)
    np.testing.assert_array_equal(v.numpy(), np.ones((2, 3), dtype="float32"))
    assert (v.name, v.aggregation, v.synchronization, v.autocast) == ("w", "mean", "on_read",
                                                                      False)
    seeded = keras.Variable(keras.initializers.RandomNormal(seed=3), shape=(4,))
    np.testing.assert_array_equal(seeded.numpy(),
                                  keras.initializers.RandomNormal(seed=3)((4,)))
    assert keras.Variable(np.arange(3)).numpy().dtype == np.int64
    with pytest.raises(ValueError, match=r"`shape` argument should be specified"):
        keras.Variable(initializer="zeros")
    with pytest.raises(ValueError, match=r"aggregation='max'"):
        keras.Variable([1.0], aggregation="max")
    with pytest.raises(ValueError, match=r"shape \(2,\), but the `shape` argument is \(3,\)"):
        keras.Variable([1.0, 2.0], shape=(3,))
    with pytest.raises(ValueError, match="layout"):
        keras.Variable([1.0], layout="model")


def test_keras_tensor_refuses_sparse_and_ragged():
    t = keras.KerasTensor((None, 3), dtype="float32", record_history=False, name="t")
    assert t.shape == (None, 3) and t.name == "t"
    with pytest.raises(ValueError, match="sparse=True"):
        keras.KerasTensor((None, 3), sparse=True)
