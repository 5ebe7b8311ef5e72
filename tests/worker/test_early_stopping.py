"""EarlyStopping in a remote job stops at the epoch local ``fit`` stops at."""

from __future__ import annotations

import numpy as np


def test_early_stopping_stops_where_local_fit_stops(kit):
    x, y = kit.blobs(160, 20, noise=3.0, seed=3)  # noisy and small: it overfits fast
    callbacks = [{"class_name": "EarlyStopping",
                  "config": {"monitor": "val_loss", "patience": 2,
                             "restore_best_weights": True}},
                 {"class_name": "ReduceLROnPlateau",
                  "config": {"monitor": "val_loss", "patience": 1, "factor": 0.5}}]
    spec = kit.spec(kit.mlp_config(hidden=64), x, y, epochs=40, batch_size=16, replicas=2,
                    validation_split=0.25, callbacks=callbacks,
                    optimizer={"class_name": "Adam", "config": {"learning_rate": 0.03}})
    job_id = kit.submit(spec)
    kit.worker().run()
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    expected, history = kit.reference(spec, x, y)
    local_epochs = len(history.history["loss"])
    assert local_epochs < 40, "the fixture must stop early"
    assert len(record.history["loss"]) == local_epochs
    np.testing.assert_allclose(record.history["val_loss"], history.history["val_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(record.history["learning_rate"],
                               history.history["learning_rate"])
    kit.assert_close(kit.final_weights(job_id), expected, rtol=1e-4, atol=1e-5)
