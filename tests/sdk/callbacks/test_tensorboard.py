"""TensorBoard writes event files that tensorboard's own EventAccumulator reads."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.callbacks import TensorBoard
from lamina.callbacks.event_writer import crc32c

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _load(path):
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0,
                                                                       "histograms": 0})
    acc.Reload()
    return acc


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283


def test_epoch_batch_scalars_learning_rate_and_histograms(tmp_path, model, data):
    x, y = data
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=(x, y),
              callbacks=[TensorBoard(tmp_path, histogram_freq=1, update_freq=2)])
    train, val = _load(tmp_path / "train"), _load(tmp_path / "validation")
    tags = train.Tags()["scalars"]
    assert {"epoch_loss", "epoch_learning_rate", "batch_loss"} <= set(tags)
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1]
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6, 8]
    assert train.Scalars("epoch_learning_rate")[0].value == pytest.approx(0.01)
    assert [e.step for e in val.Scalars("epoch_loss")] == [0, 1]
    histos = train.Tags()["histograms"]
    assert len(histos) == 4 and all(t.endswith("/histogram") for t in histos)
    kernel = model.layers[0].weights[0]
    name = f"{getattr(kernel, 'path', kernel.name).replace(':', '_')}/histogram"
    last = train.Histograms(name)[-1].histogram_value
    assert last.num == kernel.numpy().size
    assert last.min == pytest.approx(float(np.min(kernel.numpy())))
    assert sum(last.bucket) == kernel.numpy().size


def test_update_freq_is_validated():
    with pytest.raises(ValueError, match="update_freq=0"):
        TensorBoard(update_freq=0)
