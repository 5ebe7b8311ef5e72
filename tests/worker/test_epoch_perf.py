"""Measured throughput and all-reduce share reach each epoch's event (not the history)."""

from __future__ import annotations


def test_epoch_events_carry_measured_throughput_and_allreduce_share(kit):
    x, y = kit.blobs(192, 20)
    spec = kit.spec(kit.mlp_config(), x, y, epochs=3, batch_size=16, replicas=2)
    job_id = kit.submit(spec)
    kit.worker().run()
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    epochs = [d for kind, d in kit.events(job_id) if kind == "epoch"]
    assert [d["epoch"] for d in epochs] == [0, 1, 2]
    for event in epochs:
        # 192 samples in 12 global batches take well under a minute and more than 0 s
        assert 192 / 60 < event["samples_per_second"] < 1e8, event
        # two replicas exchange gradients every step: some, never all, of the step time
        assert 0 < event["allreduce_share"] < 1, event
    # the history keeps the model's logs only (Keras's History keys), one per epoch
    assert set(record.history) == {"loss", "accuracy"}, record.history
    assert all(len(values) == 3 for values in record.history.values())
