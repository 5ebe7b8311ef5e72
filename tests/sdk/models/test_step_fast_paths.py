"""The per-step shortcuts of fit (bench/step_overhead.py) against their reference paths."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina import layers
from lamina.backend.tensor import Tensor
from lamina.metrics import Mean
from lamina.models import data as data_utils
from lamina.models.compile_utils import LossTracker, pythonify
from lamina.tree import map_structure


@pytest.mark.parametrize("array", [
    np.arange(60, dtype=np.float32).reshape(10, 3, 2),
    np.arange(10),
    np.array([f"s{i}" for i in range(10)], dtype=object),
    np.arange(40, dtype=np.int16).reshape(10, 4).T.copy().T,  # Fortran order
    np.arange(10 * 3, dtype=">f4").reshape(10, 3),
])
def test_take_with_an_index_array_equals_fancy_indexing(array):
    index = np.array([3, 0, 9, -1, 3], dtype=np.int64)
    for structure in (array, (array, None), {"a": array, "b": [array]}):
        got = data_utils.take(structure, index)
        want = map_structure(lambda a: None if a is None else a[index], structure)
        for g, w in zip(keras.tree.flatten(got), keras.tree.flatten(want)):
            assert (g is None) == (w is None)
            if g is not None:
                assert g.dtype == w.dtype and g.shape == w.shape
                np.testing.assert_array_equal(g, w)
                assert g.flags.c_contiguous and g.flags.writeable


def test_take_out_of_range_raises():
    with pytest.raises(IndexError, match="out of bounds"):
        data_utils.take(np.zeros((4, 2)), np.array([4]))


@pytest.mark.parametrize("values", [0.25, np.float32(0.3), np.array(1.5, np.float32),
                                    Tensor(np.array(0.7, np.float32)), np.array([1.0, 2.0])])
def test_loss_tracker_takes_floats_as_the_mean_of_anything_else(values):
    tracker, reference = LossTracker(), LossTracker()
    tracker.update_state(values, 4)
    data = values.data if isinstance(values, Tensor) else values
    reference.total, reference.count = float(np.mean(data)) * 4.0, 4.0
    assert tracker.result() == reference.result()


def test_mean_metric_sums_like_np_sum():
    values = np.random.default_rng(0).random(1000).astype(np.float32)
    metric = Mean()
    metric.update_state(values)
    assert metric.total == float(np.sum(values, dtype=np.float64))
    assert metric.count == 1000.0


def test_pythonify_keeps_floats_and_converts_the_rest():
    logs = pythonify({"loss": 0.5, "nested": {"acc": np.float32(0.25)},
                      "t": Tensor(np.array(2.0)), "v": np.array([1.0, 2.0])})
    assert list(logs) == ["loss", "acc", "t", "v"]
    assert type(logs["loss"]) is float and type(logs["acc"]) is float
    assert type(logs["t"]) is float and logs["t"] == 2.0
    np.testing.assert_array_equal(logs["v"], [1.0, 2.0])


@pytest.mark.parametrize("dtype", ["float64", "float16", ">f4", "float32", "int32"])
def test_layer_input_dtypes_as_before_for_tensors_and_arrays(dtype):
    layer = layers.Activation("linear")  # autocast to float32, as Keras
    x = np.ones((2, 3), dtype=dtype)
    for value in (x, Tensor(x)):
        out = layer(value)
        # Floats of another name are cast to float32; ints and same-name floats are kept.
        want = np.dtype("float32") if x.dtype.kind == "f" and x.dtype.name != "float32" \
            else x.dtype
        assert out.data.dtype == want


def test_layer_losses_are_cleared_on_each_top_level_call():
    class AddsLoss(layers.Layer):
        def call(self, x):
            self.add_loss(keras.ops.sum(x))
            return x

    layer = AddsLoss()
    layer(np.ones((2, 2), np.float32))
    first = layer.losses
    layer(np.zeros((2, 2), np.float32))
    assert len(first) == 1 and float(first[0].data) == 4.0
    assert [float(v.data) for v in layer.losses] == [0.0]


def _reference_trainable_weights(layer) -> list:
    """The nested walk trainable_weights replaced: each sub-layer's list, de-duplicated."""
    if type(layer).trainable_weights is not layers.Layer.__dict__["trainable_weights"]:
        return layer.trainable_weights
    if not layer.trainable:
        return []
    out, seen = [], set()
    for v in [v for v in layer._own_variables if v.trainable] + [
            v for sub in layer._flat_layers() for v in _reference_trainable_weights(sub)]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def test_trainable_weights_match_the_nested_walk():
    shared = layers.Dense(3)

    class Custom(layers.Layer):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(2)
            self.b = shared
            self.frozen = layers.Dense(2, trainable=False)

        @property
        def trainable_weights(self):  # an override is asked, as before
            return list(reversed(super().trainable_weights))

        def call(self, x):
            return self.frozen(self.a(self.b(x)))

    inputs = keras.Input((4,))
    h = shared(layers.Dense(3)(inputs))
    h = Custom()(h)
    bn = layers.BatchNormalization()
    model = keras.Model(inputs, bn(layers.Dense(3)(h)))
    outer = keras.Sequential([keras.Input((4,)), model, layers.Dense(1)])
    for m in (model, outer):
        got, want = m.trainable_weights, _reference_trainable_weights(m)
        assert [id(v) for v in got] == [id(v) for v in want]
        assert len(got) == (10 if m is model else 12)
    model.layers[2].trainable = False
    assert [id(v) for v in outer.trainable_weights] == [
        id(v) for v in _reference_trainable_weights(outer)]


def test_finite_check_in_the_datas_own_precision():
    big = np.full((4, 3), 3e38, np.float32)  # finite; its float32 sum overflows
    data_utils.check_finite((big,), "x")
    data_utils.check_finite((np.full((8, 2), 60000, np.float16),), "x")  # > float16 max summed
    for dtype, bad in [(np.float32, -np.inf), (np.float16, np.nan), (np.complex64, np.nan)]:
        array = np.ones((6, 2), dtype)
        array[5, 0] = bad
        with pytest.raises(ValueError, match=r"`x` contains NaN or infinite.*\(5, 0\)"):
            data_utils.check_finite((array,), "x")


def _reference_tracked_metrics(layer) -> list:
    """The nested merge _tracked_metrics replaced."""
    out = list(layer.__dict__.get("_metrics", []))
    for sub in layer._flat_layers():
        out.extend(m for m in _reference_tracked_metrics(sub) if all(m is not o for o in out))
    return out


def test_tracked_metrics_match_the_nested_merge():
    shared_metric = Mean(name="shared")

    class WithMetrics(layers.Layer):
        def __init__(self, inner=None):
            super().__init__()
            self.own = Mean(name=f"own_{id(self)}")
            self.shared = shared_metric
            self.inner = inner

        def call(self, x):
            return x if self.inner is None else self.inner(x)

    deep = WithMetrics()
    inputs = keras.Input((2,))
    model = keras.Model(inputs, WithMetrics(WithMetrics(deep))(deep(inputs)))
    model.extra = Mean(name="extra")
    outer = keras.Sequential([keras.Input((2,)), model, WithMetrics()])
    for m in (model, outer):
        got, want = m._tracked_metrics(), _reference_tracked_metrics(m)
        assert [id(v) for v in got] == [id(v) for v in want]
    assert len(outer._tracked_metrics()) == 6  # extra, shared, 3 own of model's, outer's own


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean",
                                       "mean_with_sample_weight", "none"])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (0, 3), (0,), ()])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unweighted_reduction_equals_the_weighted_path_with_no_weights(reduction, shape, dtype):
    from lamina.losses.loss import reduce_weighted_values

    data = np.random.default_rng(0).random(shape).astype(dtype)
    got = reduce_weighted_values(Tensor(data), reduction=reduction)
    # Weights of one take the general path; they leave every value (and the sum) as is.
    want = reduce_weighted_values(Tensor(data), sample_weight=np.ones(shape, dtype),
                                  reduction=reduction)
    assert got.data.dtype == want.data.dtype and got.data.shape == want.data.shape
    np.testing.assert_array_equal(got.data, want.data)


def _fit_recording_gradients(monkeypatch, optimizer="adam"):
    """Seeded fit of a 600-512-10 MLP (its update takes the gather-in-parts path); the
    bytes of its weights and optimizer variables, and for each step whether every
    gradient was written into the optimizer's flat buffer."""
    from lamina.models import trainer

    in_buffer = []
    gradients = trainer.gradients

    def recording(target, sources):
        grads = gradients(target, sources)
        opt = model.optimizer
        if opt.built:
            in_buffer.append(all(np.shares_memory(g, opt._segments[0].grad) for g in grads))
        return grads

    monkeypatch.setattr(trainer, "gradients", recording)
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((600,)), layers.Dense(512, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 600)).astype(np.float32)
    model.fit(x, rng.integers(0, 10, 96), batch_size=32, epochs=2, verbose=0)
    return [w.tobytes() for w in model.get_weights() + model.optimizer.get_weights()], in_buffer


def test_backward_writes_gradients_into_the_optimizers_buffer_with_the_same_bits(monkeypatch):
    from lamina.optimizers.flat_apply import FlatApply

    written, in_buffer = _fit_recording_gradients(monkeypatch)
    assert in_buffer and all(in_buffer)  # every step after the first (which builds)
    monkeypatch.setattr(FlatApply, "gradient_views", lambda self, variables: [])
    copied, in_buffer = _fit_recording_gradients(monkeypatch)
    assert in_buffer and not any(in_buffer)
    assert written == copied


def test_gradients_are_not_offered_when_the_update_needs_them_whole(monkeypatch):
    _, in_buffer = _fit_recording_gradients(monkeypatch, keras.optimizers.Adam(clipnorm=1.0))
    assert in_buffer and not any(in_buffer)


def test_one_replica_writes_gradients_into_the_optimizers_buffer_too(monkeypatch, tmp_path):
    """A data-parallel replica alone (a job with ``replicas=1``) has nothing to exchange:
    backward writes into the optimizer's flat buffer as local ``fit`` does (no copy per
    step), with local ``fit``'s bytes."""
    from lamina.distribute import shm
    from lamina.distribute.strategy import DataParallel, set_strategy

    local, _ = _fit_recording_gradients(monkeypatch)
    collective = shm.SharedMemoryCollective(shm.create(tmp_path / "one", 1, 400_000, 64), 0)
    set_strategy(DataParallel(collective))
    try:
        replica, in_buffer = _fit_recording_gradients(monkeypatch)
    finally:
        set_strategy(None)
        collective.close()
    assert in_buffer and all(in_buffer)
    assert replica == local
