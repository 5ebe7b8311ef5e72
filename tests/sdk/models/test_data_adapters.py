"""Data into fit/evaluate/predict as Keras 3 takes it: PyDataset, generators, iterables."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lamina as keras
from lamina.utils import PyDataset, Sequence

BATCH = 16


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
    return x, y


def _model(seed=1, dropout=True):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(8,)), keras.layers.Dense(16, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(0.25))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


class Batches(PyDataset):
    def __init__(self, x, y, batch_size=BATCH, epochs_seen=None, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_seen = epochs_seen if epochs_seen is not None else []
        self.fail_at = fail_at

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError(f"cannot read batch {i}")
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_seen.append(len(self.epochs_seen))


def _weights(model):
    return [w.copy() for w in model.get_weights()]


@pytest.mark.parametrize("kwargs", [
    {}, {"workers": 2}, {"workers": 3, "max_queue_size": 2},
    {"workers": 2, "use_multiprocessing": True}])
def test_fit_on_a_pydataset_equals_fit_on_the_same_arrays(kwargs):
    x, y = _data()
    reference = _model()
    ref_history = reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    model = _model()
    seen = []
    history = model.fit(Batches(x, y, epochs_seen=seen, **kwargs), epochs=2, shuffle=False,
                        verbose=0)
    for a, b in zip(_weights(reference), _weights(model)):
        np.testing.assert_array_equal(a, b)
    assert history.history == ref_history.history
    assert seen == [0, 1]  # on_epoch_end once per epoch


def test_sequence_is_keras_2s_name_for_pydataset():
    assert Sequence is PyDataset


def test_shuffle_permutes_batches_of_a_pydataset_deterministically():
    x, y = _data()

    def order(seed):
        keras.utils.set_random_seed(seed)
        model = _model(dropout=False)
        seen = []

        class Recording(Batches):
            def __getitem__(self, i):
                seen.append(i)
                return super().__getitem__(i)

        model.fit(Recording(x, y), epochs=1, shuffle=True, verbose=0)
        return seen

    first = order(3)
    assert sorted(first) == list(range(6)) and first != list(range(6))


def test_evaluate_and_predict_take_a_pydataset_with_workers():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    expected = model.evaluate(x, y, batch_size=BATCH, verbose=0)
    got = model.evaluate(Batches(x, y, workers=2), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(Batches(x, y, workers=2), verbose=0),
                                  model.predict(x, batch_size=BATCH, verbose=0))


def test_a_failing_batch_raises_at_its_index_and_stops_the_workers():
    x, y = _data()
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="cannot read batch 3"):
        _model().fit(Batches(x, y, workers=2, fail_at=3), epochs=1, verbose=0)
    leftover = {t.name for t in threading.enumerate()} - before
    assert not [n for n in leftover if n.startswith("lamina-pydataset")]


def test_a_pydataset_refuses_arguments_its_batches_carry():
    x, y = _data()
    with pytest.raises(ValueError, match=r"`y` is only supported when `x` is arrays"):
        _model().fit(Batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split=0.2"):
        _model().fit(Batches(x, y), validation_split=0.2, verbose=0)


def test_pydataset_arguments_are_validated():
    with pytest.raises(ValueError, match=r"workers=-1"):
        PyDataset(workers=-1)
    with pytest.raises(ValueError, match=r"max_queue_size=0"):
        PyDataset(max_queue_size=0)


def _infinite(x, y, batch_size=BATCH):
    while True:
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]


def test_infinite_generator_with_steps_per_epoch_and_validation_steps(capsys):
    x, y = _data()
    model = _model()
    history = model.fit(_infinite(x, y), steps_per_epoch=5, epochs=2,
                        validation_data=_infinite(x, y), validation_steps=2, verbose=1)
    out = capsys.readouterr().out
    assert "5/5" in out  # the progress bar knows its total
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(history.history["loss"]) == 2


def test_generator_equals_arrays_when_it_yields_the_same_batches():
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    model = _model()
    model.fit(_infinite(x, y), steps_per_epoch=6, epochs=2, verbose=0)
    for a, b in zip(_weights(reference), _weights(model)):
        np.testing.assert_array_equal(a, b)


def test_a_finite_generator_runs_out_with_keras_warning():
    x, y = _data()
    batches = ((x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH))
    model = _model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(batches, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1  # the second epoch had no batch: training stops


def test_wrong_batch_structure_names_the_batch_and_what_was_yielded():
    x, y = _data()

    def bad():
        yield x[:4], y[:4]
        yield x[:4], y[:4], None, "extra"

    with pytest.raises(ValueError, match=r"Batch 1 of the generator is a tuple of 4 entries"):
        _model().fit(bad(), steps_per_epoch=2, verbose=0)


class FakeTensor:
    """Quacks like a tf.Tensor / torch.Tensor leaf: `.numpy()` and no `__array__`."""

    def __init__(self, value):
        self._value = value

    def numpy(self):
        return self._value


class LoaderLike:
    """Iterates like a torch DataLoader or a tf.data.Dataset: a fresh pass per epoch."""

    def __init__(self, x, y):
        self.x, self.y, self.passes = x, y, 0

    def __len__(self):
        return -(-len(self.x) // BATCH)

    def __iter__(self):
        self.passes += 1
        for i in range(0, len(self.x), BATCH):
            yield FakeTensor(self.x[i:i + BATCH]), FakeTensor(self.y[i:i + BATCH])


def test_dataloader_like_iterables_are_iterated_afresh_each_epoch():
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
    loader = LoaderLike(x, y)
    model = _model()
    model.fit(loader, epochs=3, validation_data=LoaderLike(x, y), verbose=0)
    assert loader.passes == 3
    for a, b in zip(_weights(reference), _weights(model)):
        np.testing.assert_array_equal(a, b)


def test_dict_batches_feed_named_inputs():
    x, y = _data()
    inputs = {"a": keras.Input(shape=(4,), name="a"), "b": keras.Input(shape=(4,), name="b")}
    merged = keras.layers.Concatenate()([inputs["a"], inputs["b"]])
    model = keras.Model(inputs, keras.layers.Dense(1)(merged))
    model.compile(optimizer="sgd", loss="mse")

    class DictBatches:
        def __iter__(self):
            for i in range(0, 32, 8):
                yield {"a": x[i:i + 8, :4], "b": x[i:i + 8, 4:]}, y[i:i + 8]

    history = model.fit(DictBatches(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_one_dimensional_x_feeds_an_input_of_shape_one():
    """Keras adds the trailing axis: (N,) data for Input(shape=(1,)) (and drops a
    trailing 1 the model does not expect)."""
    x = np.linspace(-1, 1, 32).astype("float32")
    y = 3 * x + 1
    for build in (lambda i, o: keras.Model(i, o),
                  lambda i, o: keras.Sequential([keras.Input(shape=(1,)),
                                                 keras.layers.Dense(1)])):
        inputs = keras.Input(shape=(1,))
        model = build(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, epochs=1, verbose=0)
        np.testing.assert_array_equal(model.predict(x, verbose=0),
                                      model.predict(x[:, None], verbose=0))
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    data = np.ones((4, 3), dtype="float32")
    np.testing.assert_array_equal(model.predict(data[..., None], verbose=0),
                                  model.predict(data, verbose=0))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(4, 5\)"):
        model.predict(np.ones((4, 5), dtype="float32"), verbose=0)


def test_bad_steps_per_epoch_names_the_value():
    x, y = _data()
    with pytest.raises(ValueError, match=r"steps_per_epoch=0"):
        _model().fit(_infinite(x, y), steps_per_epoch=0, verbose=0)


@pytest.mark.parametrize("shuffle", [False, True, "batch"])
def test_an_array_adapters_part_gathers_only_those_rows_of_each_batch(shuffle):
    # A data-parallel replica sets `part`: it must get exactly its rows of the batch it
    # would have sliced from the whole one, with the whole batch's size alongside.
    from lamina.models.data_adapters import ArrayAdapter

    x, y = _data(n=90)
    w = np.arange(90, dtype="float32")

    def adapter():
        return ArrayAdapter(x, y, w, 90, BATCH, shuffle, np.random.default_rng(3))

    whole = list(adapter().passes())
    parted = adapter()
    parted.part = lambda n: (n // 3, n - 2)
    rows = []
    for (bx, by, bw), (px, py, pw) in zip(whole, parted.passes()):
        n = len(bx)
        rows.append(parted.batch_rows)
        for full, part in ((bx, px), (by, py), (bw, pw)):
            np.testing.assert_array_equal(part, full[n // 3:n - 2])
    # The whole batches' sizes (one of 10 rows, last unless batches are shuffled), not
    # the parts'.
    assert rows == [len(bx) for bx, _, _ in whole] and sorted(rows) == [10] + [16] * 5
    parted.part = None  # unset: whole batches again
    for (bx, _, _), (px, _, _) in zip(adapter().passes(), parted.passes()):
        assert len(px) == len(bx)
