"""One list of callback instances serves two ``fit`` calls with the same results."""

from __future__ import annotations

import os

import numpy as np

from lamina import callbacks


def test_callbacks_reusable_across_two_fits(make_model, data, tmp_path):
    x, y = data
    scores = [1.0, 0.5, 0.75, 0.8, 0.9, 0.1]

    def make_list():
        return [
            callbacks.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(
                score=scores[e])),
            callbacks.EarlyStopping(monitor="score", mode="min", patience=2,
                                    restore_best_weights=True),
            callbacks.ReduceLROnPlateau(monitor="score", mode="min", patience=1, factor=0.5),
            callbacks.LearningRateScheduler(lambda epoch, lr: lr),
            callbacks.CSVLogger(tmp_path / "log.csv"),
            callbacks.TerminateOnNaN(),
            callbacks.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_weights_only=True),
            callbacks.BackupAndRestore(tmp_path / "backup"),
        ]

    shared = make_list()
    runs = []
    for _ in range(2):
        model = make_model(optimizer="sgd")
        history = model.fit(x, y, epochs=len(scores), batch_size=8, verbose=0,
                            shuffle=False, callbacks=shared)
        runs.append((history.epoch, history.history, model.get_weights(),
                     (tmp_path / "log.csv").read_text()))
        assert not os.path.exists(tmp_path / "backup")

    model = make_model(optimizer="sgd")
    fresh = model.fit(x, y, epochs=len(scores), batch_size=8, verbose=0, shuffle=False,
                      callbacks=make_list())
    for epochs, history, weights, csv in runs:
        assert epochs == fresh.epoch == [0, 1, 2, 3]
        assert history == fresh.history
        assert np.allclose(history["learning_rate"], [0.01, 0.01, 0.005, 0.0025])
        for got, want in zip(weights, model.get_weights()):
            np.testing.assert_array_equal(got, want)
        assert csv == (tmp_path / "log.csv").read_text()
