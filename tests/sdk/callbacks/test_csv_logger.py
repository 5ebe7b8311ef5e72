"""CSVLogger: Keras's header, row format, NA columns and append mode."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.callbacks import CSVLogger


def drive(model, callback, rows):
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(rows):
        callback.on_epoch_end(epoch, logs)
    callback.on_train_end()


def test_header_and_rows(model, tmp_path):
    path = tmp_path / "log.csv"
    drive(model, CSVLogger(path), [{"loss": 0.5, "accuracy": 0.25, "val_loss": 0.75},
                                   {"loss": 0.125, "accuracy": 1.0, "val_loss": 0.5}])
    assert path.read_bytes() == (b"epoch,accuracy,loss,val_loss\r\n"
                                 b"0,0.25,0.5,0.75\r\n"
                                 b"1,1.0,0.125,0.5\r\n")


def test_val_columns_added_and_filled_with_na(model, tmp_path):
    path = tmp_path / "log.csv"
    drive(model, CSVLogger(path, separator=";"), [{"loss": 0.5}, {"loss": 0.25, "val_loss": 1.5}])
    assert path.read_text().splitlines() == ["epoch;loss;val_loss", "0;0.5;NA", "1;0.25;1.5"]


def test_iterables_are_bracketed(model, tmp_path):
    path = tmp_path / "log.csv"
    drive(model, CSVLogger(path), [{"loss": 0.5, "val_loss": 1.0, "per": np.array([1, 2])}])
    assert path.read_text().splitlines()[1] == '0,0.5,"""[1, 2]""",1.0'


def test_append_writes_header_once(model, tmp_path):
    path = tmp_path / "log.csv"
    drive(model, CSVLogger(path, append=True), [{"loss": 0.5, "val_loss": 1.0}])
    drive(model, CSVLogger(path, append=True), [{"loss": 0.25, "val_loss": 0.5}])
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "0,0.5,1.0", "0,0.25,0.5"]


def test_overwrite_without_append_and_reuse(model, tmp_path):
    path = tmp_path / "log.csv"
    callback = CSVLogger(path)
    drive(model, callback, [{"loss": 0.5}])
    drive(model, callback, [{"loss": 0.25}, {"loss": 0.125}])
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "0,0.25,NA", "1,0.125,NA"]


def test_in_fit(model, data, tmp_path):
    x, y = data
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_split=0.25,
                        callbacks=[CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss"
    assert len(lines) == 4
    for epoch, line in enumerate(lines[1:]):
        e, loss, val_loss = line.split(",")
        assert int(e) == epoch
        assert float(loss) == pytest.approx(history.history["loss"][epoch], rel=1e-12)
        assert float(val_loss) == pytest.approx(history.history["val_loss"][epoch], rel=1e-12)
