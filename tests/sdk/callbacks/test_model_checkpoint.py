"""ModelCheckpoint: file names, best-only decisions, batch saves, messages, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lamina.callbacks import LambdaCallback, ModelCheckpoint


def run_script(model, callback, values, key="val_loss"):
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), key: value})
    callback.on_train_end()


@pytest.mark.parametrize("kwargs,message", [
    (dict(filepath="w.h5", save_weights_only=True),
     "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must end "
     "in `.weights.h5` (Keras weights format). Received: filepath=w.h5"),
    (dict(filepath="m.keras", save_weights_only=True),
     "must end in `.weights.h5`"),
    (dict(filepath="model.tf"),
     "The filepath provided must end in `.keras` (Keras model format). Received: "
     "filepath=model.tf"),
    (dict(filepath="m.keras", save_freq="batch"),
     "Unrecognized save_freq: batch. Expected save_freq are 'epoch' or integer values"),
    (dict(filepath="m.keras", save_freq=2.5), "Unrecognized save_freq: 2.5"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        ModelCheckpoint(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("filepath", ["m.keras", "m.h5", "sub/m.weights.h5", "a.weights.h5"])
def test_accepted_extensions(filepath):
    ModelCheckpoint(filepath, save_weights_only=filepath.endswith(".weights.h5"))


def test_every_epoch_file_names(model, saved, tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "ckpt" / "m-{epoch:02d}-{loss:.2f}.keras"))
    run_script(model, callback, [3.0, 2.0, 1.0])
    assert saved == ["m-01-1.00.keras", "m-02-0.50.keras", "m-03-0.33.keras"]
    assert sorted(os.listdir(tmp_path / "ckpt")) == saved  # parent folder created


def test_save_best_only(model, saved, tmp_path, capsys):
    path = str(tmp_path / "best-{epoch}.weights.h5")
    callback = ModelCheckpoint(path, save_best_only=True, save_weights_only=True, verbose=1)
    run_script(model, callback, [1.0, 0.5, 0.7, 0.25, 0.25])
    assert saved == ["best-1.weights.h5", "best-2.weights.h5", "best-4.weights.h5"]
    out = capsys.readouterr().out
    p = str(tmp_path)
    assert out == (
        f"\nEpoch 1: val_loss improved from None to 1.00000, saving model to "
        f"{p}/best-1.weights.h5\n"
        f"\nEpoch 1: finished saving model to {p}/best-1.weights.h5\n"
        f"\nEpoch 2: val_loss improved from 1.00000 to 0.50000, saving model to "
        f"{p}/best-2.weights.h5\n"
        f"\nEpoch 2: finished saving model to {p}/best-2.weights.h5\n"
        "\nEpoch 3: val_loss did not improve from 0.50000\n"
        f"\nEpoch 4: val_loss improved from 0.50000 to 0.25000, saving model to "
        f"{p}/best-4.weights.h5\n"
        f"\nEpoch 4: finished saving model to {p}/best-4.weights.h5\n"
        "\nEpoch 5: val_loss did not improve from 0.25000\n")


def test_save_best_only_max_mode_and_threshold(model, saved, tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "{epoch}.keras"), monitor="val_acc",
                               save_best_only=True, mode="max", initial_value_threshold=0.6)
    run_script(model, callback, [0.5, 0.7, 0.65, 0.9, 0.9], key="val_acc")
    assert saved == ["2.keras", "4.keras"]


def test_best_is_kept_across_fits(model, saved, tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "{epoch}.keras"), save_best_only=True)
    run_script(model, callback, [1.0, 0.5])
    run_script(model, callback, [0.7, 0.4])
    assert saved == ["1.keras", "2.keras", "2.keras"]


def test_verbose_every_epoch(model, saved, tmp_path, capsys):
    callback = ModelCheckpoint(str(tmp_path / "m.keras"), verbose=1)
    run_script(model, callback, [1.0])
    p = tmp_path / "m.keras"
    assert capsys.readouterr().out == (f"\nEpoch 1: saving model to {p}\n"
                                       f"\nEpoch 1: finished saving model to {p}\n")


def test_missing_monitor_warns_and_saves(model, saved, tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m.keras"), monitor="val_auc",
                               save_best_only=True, mode="max")
    callback.set_model(model)
    with pytest.warns(UserWarning, match="Can save best model only with val_auc available."):
        callback.on_epoch_end(0, {"loss": 1.0})
    assert saved == ["m.keras"]


def test_non_scalar_monitor_falls_back_to_saving(model, saved, tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m.keras"), monitor="v", save_best_only=True,
                               mode="min")
    callback.set_model(model)
    with pytest.warns(UserWarning, match="Falling back to `save_best_only=False`"):
        callback.on_epoch_end(0, {"v": np.array([1.0, 2.0])})
    assert saved == ["m.keras"]


def test_unknown_placeholder_raises_key_error(model, saved, tmp_path):
    pattern = str(tmp_path / "m-{val_auc:.2f}.keras")
    callback = ModelCheckpoint(pattern)
    callback.set_model(model)
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        callback.on_epoch_end(0, {"val_loss": 1.0})


def test_existing_directory_raises(model, saved, tmp_path):
    (tmp_path / "d.keras").mkdir()
    callback = ModelCheckpoint(str(tmp_path / "d.keras"))
    callback.set_model(model)
    with pytest.raises(OSError, match="Please specify a non-directory filepath"):
        callback.on_epoch_end(0, {"val_loss": 1.0})


def test_batch_save_freq_in_fit(model, saved, data, tmp_path):
    x, y = data  # 32 samples, batch 8: four batches per epoch
    callback = ModelCheckpoint(str(tmp_path / "{epoch}-{batch}-{loss:.0f}.weights.h5"),
                               save_weights_only=True, save_freq=3)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, callbacks=[callback])
    # Batches are counted across epochs: saves after batches 3, 6, 9 and 12 overall.
    assert [name.split("-")[:2] for name in saved] == [["1", "3"], ["2", "2"], ["3", "1"],
                                                      ["3", "4"]]


def test_epoch_save_in_fit_with_validation_logs(model, saved, data, tmp_path):
    x, y = data
    callback = ModelCheckpoint(str(tmp_path / "e{epoch:03d}.keras"), monitor="val_loss",
                               save_best_only=True)
    losses = []
    model.fit(x, y, epochs=4, batch_size=8, verbose=0, validation_split=0.25,
              callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: losses.append(
                  logs["val_loss"])), callback])
    expected, best = [], None
    for epoch, value in enumerate(losses):
        if best is None or value < best:
            best = value
            expected.append(f"e{epoch + 1:03d}.keras")
    assert saved == expected


def test_real_weights_file(model, tmp_path):
    pytest.importorskip("lamina.saving.saving_api")
    callback = ModelCheckpoint(str(tmp_path / "w-{epoch}.weights.h5"), save_weights_only=True)
    run_script(model, callback, [1.0, 2.0])
    assert sorted(os.listdir(tmp_path)) == ["w-1.weights.h5", "w-2.weights.h5"]


def test_real_full_model_files_reload(model, data, tmp_path):
    pytest.importorskip("lamina.saving.saving_api")
    import lamina

    x, y = data
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}.keras"))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert sorted(os.listdir(tmp_path)) == ["m-01.keras", "m-02.keras"]
    restored = lamina.models.load_model(str(tmp_path / "m-02.keras"))
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
