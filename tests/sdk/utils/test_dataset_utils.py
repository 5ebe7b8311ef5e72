"""``image/text/audio_dataset_from_directory``, ``timeseries_dataset_from_array`` and
``split_dataset``: file order, class mapping and splits equal to Keras 3.15.1's for the
same seed (tests/fixtures/datasets/make_util_fixtures.py); images decoded as Keras's
loader does; the datasets train a model through ``fit``."""

from __future__ import annotations

import json
import os
import random
import wave
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import preprocessing, utils
from lamina.utils import dataset_utils
from lamina.utils.image_dataset_utils import load_image

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"
TREE = FIXTURES / "tree"
EXPECTED = json.loads((FIXTURES / "util_expected.json").read_text())


def _rel(paths):
    return [os.path.relpath(p, TREE) for p in paths]


@pytest.mark.parametrize("case", EXPECTED["index"], ids=lambda c: f"{c['args'][0]}-"
                         f"{c['args'][2] if isinstance(c['args'][2], str) else 'list'}-"
                         f"{c['args'][5]}")
def test_index_directory_order_and_classes_match_keras(case):
    sub, formats, labels, class_names, shuffle, seed = case["args"]
    paths, labs, names = dataset_utils.index_directory(
        TREE / sub, labels, tuple(formats), class_names=class_names, shuffle=shuffle,
        seed=seed, verbose=False)
    assert _rel(paths) == case["paths"] and names == case["class_names"]
    assert (None if labs is None else [int(v) for v in labs]) == case["labels"]
    for subset, (want_paths, want_labels) in case["splits"].items():
        p, lab = dataset_utils.training_or_validation_split(paths, labs, 0.3, subset)
        assert _rel(p) == want_paths
        assert (None if lab is None else [int(v) for v in lab]) == want_labels


def test_image_dataset_file_paths_and_labels_match_keras(capsys):
    case = next(c for c in EXPECTED["index"] if c["args"][0] == "images" and
                c["args"][2] == "inferred" and c["args"][5] == 42)
    train, val = utils.image_dataset_from_directory(
        TREE / "images", image_size=(6, 5), batch_size=3, seed=42, validation_split=0.3,
        subset="both", label_mode="categorical")
    assert "Found 9 files belonging to 3 classes." in capsys.readouterr().out
    assert _rel(train.file_paths) == case["splits"]["training"][0]
    assert _rel(val.file_paths) == case["splits"]["validation"][0]
    assert train.class_names == val.class_names == ["cat", "dog", "zebra"]
    x, y = val.as_arrays()
    assert x.shape == (2, 6, 5, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(1), case["splits"]["validation"][1])
    assert y.dtype == np.float32 and len(train) == 3
    # Every pass sees the same set (shuffled differently per epoch, repeatably).
    seen = [np.concatenate([b[1].argmax(1) for b in train]) for _ in range(2)]
    assert sorted(seen[0]) == sorted(seen[1]) == sorted(case["splits"]["training"][1])


@pytest.mark.parametrize("index", range(5))
def test_image_loading_matches_keras(index):
    rows = [r for r in EXPECTED["images"]][index * 9:(index + 1) * 9]
    for row in rows:
        size, channels, interp, fmt, crop, pad = row["args"]
        x = load_image(TREE / row["file"], size, channels, interp, fmt, crop, pad)
        np.testing.assert_allclose(x, row["values"], atol=2e-3, err_msg=row["file"])


def test_labels_none_list_and_binary():
    ds = utils.image_dataset_from_directory(TREE / "images", labels=None, image_size=4,
                                            shuffle=False, batch_size=None, verbose=False)
    assert ds.class_names is None and next(iter(ds)).shape == (4, 4, 3) and len(ds) == 10
    labels = [1, 0, 2, 2, 0, 1, 1, 0, 5, 3]
    ds = utils.image_dataset_from_directory(TREE / "images", labels=labels, image_size=4,
                                            shuffle=False, verbose=False)
    assert ds.class_names == ["0", "1", "2", "3", "5"]
    assert ds.as_arrays()[1].tolist() == labels
    with pytest.raises(ValueError, match="exactly 2"):
        utils.image_dataset_from_directory(TREE / "images", label_mode="binary")
    ds = utils.image_dataset_from_directory(TREE / "images", label_mode="binary",
                                            class_names=["zebra", "dog"], image_size=3,
                                            seed=1, verbose=False, color_mode="grayscale")
    x, y = ds.as_arrays()
    assert x.shape == (5, 3, 3, 1) and y.shape == (5, 1) and y.dtype == np.float32
    assert sorted(y[:, 0].tolist()) == [0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("kwargs, match", [
    ({"labels": "folders"}, "labels=folders"),
    ({"label_mode": "sparse"}, "label_mode=sparse"),
    ({"color_mode": "cmyk"}, "color_mode=cmyk"),
    ({"image_size": (1, 2, 3)}, r"image_size=\(1, 2, 3\)"),
    ({"interpolation": "cubic"}, "interpolation=cubic"),
    ({"validation_split": 0.2}, "`validation_split` must be set, and inversely"),
    ({"validation_split": 0.2, "subset": "training"}, "provide a `seed`"),
    ({"validation_split": 1.5, "subset": "training", "seed": 1}, "between 0 and 1"),
    ({"validation_split": 0.2, "subset": "test", "seed": 1}, "subset=test"),
    ({"class_names": ["cat", "lion"]}, r"class_names=\['cat', 'lion'\]"),
    ({"format": "torch"}, "format=torch"),
])
def test_image_dataset_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        utils.image_dataset_from_directory(TREE / "images", verbose=False, **kwargs)


def test_empty_directory_raises(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="No images found"):
        utils.image_dataset_from_directory(tmp_path, verbose=False)


def test_text_dataset_matches_keras_order_and_reads_texts():
    case = next(c for c in EXPECTED["index"] if c["args"][0] == "texts")
    ds = preprocessing.text_dataset_from_directory(TREE / "texts", seed=11, batch_size=3,
                                                   validation_split=0.3, subset="training",
                                                   max_length=10, verbose=False)
    assert _rel(ds.file_paths) == case["splits"]["training"][0]
    texts, labels = ds.as_arrays()
    names = ds.class_names
    for path, text, label in zip(ds.file_paths, texts, labels):
        assert text == Path(path).read_text()[:10] and names[label] == Path(path).parent.name
    assert labels.dtype == np.int32 and sum(len(b[0]) for b in ds) == 5


def test_audio_dataset_pads_batches_and_matches_keras_order():
    case = next(c for c in EXPECTED["index"] if c["args"][0] == "audio")
    ds = utils.audio_dataset_from_directory(TREE / "audio", seed=13, batch_size=2,
                                            validation_split=0.3, subset="validation",
                                            verbose=False)
    assert _rel(ds.file_paths) == case["splits"]["validation"][0]
    x, y = ds.as_arrays()
    lengths, channels = [], []
    for path in ds.file_paths:
        with wave.open(str(path)) as f:
            lengths.append(f.getnframes())
            channels.append(f.getnchannels())
            raw = np.frombuffer(f.readframes(f.getnframes()), np.int16)
        first = raw.reshape(-1, channels[-1])
        np.testing.assert_array_equal(x[len(lengths) - 1, :len(first), :first.shape[1]],
                                      first / 32768.0)
    assert x.shape == (1, max(lengths), max(channels)) and x.dtype == np.float32
    # Keras's padded_batch pads time and channels to the batch's largest clip.
    everything = utils.audio_dataset_from_directory(TREE / "audio", shuffle=False,
                                                    verbose=False).as_arrays()[0]
    assert everything.shape == (5, 30, 2)
    with wave.open(str(TREE / "audio" / "no" / "a0.wav")) as f:
        assert (f.getnframes(), f.getnchannels()) == (20, 1)
    assert not everything[0, 20:].any() and not everything[0, :, 1].any()
    ds = utils.audio_dataset_from_directory(TREE / "audio", output_sequence_length=22,
                                            shuffle=False, label_mode=None, verbose=False)
    assert {b.shape[1] for b in ds} == {22}
    with pytest.raises(ValueError, match="ragged=True"):
        utils.audio_dataset_from_directory(TREE / "audio", ragged=True)
    with pytest.raises(ValueError, match="sampling_rate=16000"):
        utils.audio_dataset_from_directory(TREE / "audio", sampling_rate=16000,
                                           verbose=False).as_arrays()


def test_timeseries_matches_keras_docstring_example():
    # Keras's docstring: indices 0..98, sequence_length=10, sampling_rate=2,
    # sequence_stride=3 -> [0 2 ... 18], [3 5 ... 21], ..., last [78 80 ... 96].
    data = np.arange(100)
    ds = utils.timeseries_dataset_from_array(data[:-1], None, 10, sequence_stride=3,
                                             sampling_rate=2, batch_size=None)
    windows = [w.tolist() for w in ds]
    assert windows[0] == list(range(0, 20, 2)) and windows[1] == list(range(3, 22, 2))
    assert windows[-1] == list(range(78, 97, 2))
    # Targets offset: input data[i : i+10], target data[i+10].
    ds = preprocessing.timeseries_dataset_from_array(data[:-10], data[10:], 10,
                                                     batch_size=16)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x[:, 0] + 10, y)
    assert x.shape == (16, 10) and len(ds) == 6


def test_timeseries_shuffle_start_index_and_errors():
    data = np.arange(50)
    ds = utils.timeseries_dataset_from_array(data, data, 5, shuffle=True, seed=3,
                                             start_index=4, end_index=40, batch_size=8)
    starts = np.concatenate([b[0][:, 0] for b in ds])
    assert sorted(starts.tolist()) == list(range(4, 36))
    positions = np.arange(0, 32)
    np.random.RandomState(3).shuffle(positions)
    np.testing.assert_array_equal(ds.as_arrays()[0][:, 0], positions + 4)
    for kwargs, match in [({"start_index": -1}, "start_index=-1"),
                          ({"end_index": 60}, "end_index=60"),
                          ({"sampling_rate": 0}, "sampling_rate=0"),
                          ({"sequence_stride": 50}, "sequence_stride=50")]:
        with pytest.raises(ValueError, match=match):
            utils.timeseries_dataset_from_array(data, None, 5, **kwargs)


def test_split_dataset_sizes_and_keras_shuffle_order():
    x, y = np.arange(10) * 10, np.arange(10)
    left, right = utils.split_dataset((x, y), left_size=0.8, shuffle=True, seed=4)
    order = list(range(10))
    random.Random(4).shuffle(order)  # Keras: random.seed(seed); random.shuffle(list)
    assert [int(e[1]) for e in left] == order[:8]
    assert [int(e[1]) for e in right] == order[8:]
    a, b = utils.split_dataset(np.arange(10), right_size=3)
    assert [int(v) for v in a] == list(range(7)) and [int(v) for v in b] == [7, 8, 9]
    ds = utils.image_dataset_from_directory(TREE / "images", image_size=3, batch_size=4,
                                            seed=2, verbose=False)
    left, right = utils.split_dataset(ds, left_size=6)
    assert (len(left), len(right)) == (2, 1) and left.class_names == ds.class_names
    for kwargs, error, match in [({}, ValueError, "At least one"),
                                 ({"left_size": 0}, ValueError, "left_size=0"),
                                 ({"left_size": "5"}, TypeError, "left_size"),
                                 ({"left_size": 0.7, "right_size": 0.5}, ValueError,
                                  "greater than 1")]:
        with pytest.raises(error, match=match):
            utils.split_dataset(np.arange(10), **kwargs)


def test_fit_takes_the_dataset_and_its_arrays():
    ds = utils.image_dataset_from_directory(TREE / "images", image_size=(4, 4), batch_size=4,
                                            seed=1, verbose=False)
    model = lamina.Sequential([lamina.Input((4, 4, 3)), lamina.layers.Rescaling(1 / 255),
                               lamina.layers.Flatten(), lamina.layers.Dense(3)])
    model.compile("adam", lamina.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = ds.as_arrays()
    history = model.fit(x, y, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_fit_with_validation_dataset_and_timeseries():
    train, val = utils.image_dataset_from_directory(
        TREE / "images", image_size=(4, 4), batch_size=4, seed=1, validation_split=0.3,
        subset="both", verbose=False)
    model = lamina.Sequential([lamina.Input((4, 4, 3)), lamina.layers.Rescaling(1 / 255),
                               lamina.layers.Flatten(), lamina.layers.Dense(3)])
    model.compile("adam", lamina.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert model.predict(val, verbose=0).shape == (2, 3)
    rng = np.random.default_rng(0)
    series = utils.timeseries_dataset_from_array(rng.random((50, 2), dtype=np.float32),
                                                 rng.random(50, dtype=np.float32), 5,
                                                 batch_size=8)
    regressor = lamina.Sequential([lamina.Input((5, 2)), lamina.layers.Flatten(),
                                   lamina.layers.Dense(1)])
    regressor.compile("adam", "mse")
    assert len(regressor.fit(series, epochs=2, verbose=0).history["loss"]) == 2
