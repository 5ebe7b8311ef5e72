"""The ``tf.data``-style chaining of Lamina's datasets (``take``/``skip``/``map``/``cache``/
``prefetch``/``cardinality``) and batches that answer ``.numpy()``, as scripts written for
``tf.data`` (keras-io's text classification example) use them."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina.utils.dataset_pipeline import DerivedDataset, EagerArray
from lamina.utils.dataset_utils import BatchDataset


def _dataset(size=10, batch_size=4, shuffle=False, seed=None):
    xs = np.arange(size * 2, dtype="float32").reshape(size, 2)
    ys = (np.arange(size) % 2).astype("int32")
    return BatchDataset(size, lambda i: (xs[i], ys[i]), batch_size, shuffle, seed,
                        class_names=["a", "b"])


def test_batches_answer_numpy_like_tf_tensors():
    x, y = next(iter(_dataset()))
    assert isinstance(x, EagerArray) and type(x.numpy()) is np.ndarray
    np.testing.assert_array_equal(x.numpy(), [[0, 1], [2, 3], [4, 5], [6, 7]])
    assert x.numpy()[0].astype("uint8").tolist() == [0, 1] and int(y[1]) == 1
    texts = BatchDataset(3, lambda i: ("abc"[i], i), 2)
    batch, _ = next(iter(texts))
    assert batch.numpy().tolist() == ["a", "b"]


@pytest.mark.parametrize("count, sizes", [(2, [4, 4]), (-1, [4, 4, 2]), (7, [4, 4, 2]),
                                          (0, [])])
def test_take_and_cardinality(count, sizes):
    taken = _dataset().take(count)
    assert taken.cardinality() == len(sizes) == len(list(taken))
    assert [len(x) for x, _ in taken] == sizes
    assert taken.class_names == ["a", "b"]


def test_skip_yields_the_rest():
    rest = _dataset().skip(2)
    assert rest.cardinality() == 1
    np.testing.assert_array_equal(next(iter(rest))[1], [0, 1])
    assert list(_dataset().skip(-1)) == []


def test_map_unpacks_tuples_and_passes_other_elements_whole():
    doubled = _dataset().map(lambda x, y: (x * 2, y), num_parallel_calls=-1)
    x, y = next(iter(doubled))
    np.testing.assert_array_equal(x, [[0, 2], [4, 6], [8, 10], [12, 14]])
    assert isinstance(x, EagerArray) and len(doubled) == 3
    only_x = _dataset().map(lambda x, y: x)
    sums = only_x.map(lambda x: x.sum(axis=1))
    np.testing.assert_array_equal(next(iter(sums)), [1, 5, 9, 13])
    dicts = only_x.map(lambda x: {"f": x}).map(lambda d: d["f"][:, 0])
    np.testing.assert_array_equal(next(iter(dicts)), [0, 2, 4, 6])


def test_map_runs_lamina_layers_eagerly():
    layer = lamina.layers.Rescaling(0.5)
    mapped = _dataset().map(lambda x, y: (layer(x), y))
    x, _ = next(iter(mapped))
    np.testing.assert_allclose(x.numpy(), [[0, 0.5], [1, 1.5], [2, 2.5], [3, 3.5]])


def test_cache_replays_the_first_pass():
    calls = []

    def load(i):
        calls.append(i)
        return np.float32(i), np.int32(i % 2)

    cached = BatchDataset(6, load, 4, shuffle=True, seed=3).cache()
    first = [x.tolist() for x, _ in cached]
    second = [x.tolist() for x, _ in cached]
    assert first == second and len(calls) == 6
    assert sorted(sum(first, [])) == [0, 1, 2, 3, 4, 5]


def test_cache_of_a_partial_pass_reads_again():
    cached = _dataset().cache()
    next(iter(cached))  # abandoned after one batch: nothing is recorded
    assert [len(x) for x, _ in cached] == [4, 4, 2]


def test_prefetch_returns_the_dataset_and_checks_buffer_size():
    dataset = _dataset()
    assert dataset.prefetch(10) is dataset and dataset.prefetch(-1) is dataset
    with pytest.raises(ValueError, match=r"buffer_size=-3"):
        dataset.prefetch(-3)


@pytest.mark.parametrize("method, kwargs, message", [
    ("take", {"count": -2}, r"count=-2"),
    ("skip", {"count": 1.5}, r"count=1.5"),
    ("map", {"map_func": 3}, r"map_func=3"),
    ("cache", {"filename": "/tmp/x"}, r"filename='/tmp/x'"),
])
def test_bad_arguments_name_the_value(method, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        getattr(_dataset(), method)(**kwargs)


def test_as_numpy_iterator_yields_plain_arrays():
    x, y = next(_dataset().map(lambda x, y: (lamina.ops.convert_to_tensor(x), y))
                .as_numpy_iterator())
    assert type(x) is np.ndarray and type(y) is np.ndarray


def test_fit_and_evaluate_take_a_mapped_cached_prefetched_dataset():
    lamina.utils.set_random_seed(0)
    model = lamina.Sequential([lamina.Input((2,)), lamina.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    dataset = _dataset().map(lambda x, y: (x / 20.0, y)).cache().prefetch(-1)
    assert isinstance(dataset, DerivedDataset)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    xs, ys = _dataset().as_arrays()
    expected = model.evaluate(xs / 20.0, ys, verbose=0)
    np.testing.assert_allclose(model.evaluate(dataset, verbose=0), expected, rtol=1e-5)
