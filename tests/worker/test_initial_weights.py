"""A job starts from uploaded weights, as Keras's ``fit`` continues from the model's
current weights (``Client.fit`` uploads them as a content-addressed dataset)."""

from __future__ import annotations

import asyncio
import io

import numpy as np

from tests.worker.conftest import TENANT


def _weights_dataset(kit, arrays) -> str:
    flat = np.concatenate([np.asarray(a, np.float32).reshape(-1) for a in arrays])
    buffer = io.BytesIO()
    np.savez(buffer, weights=flat[None, :])

    async def chunks():
        yield buffer.getvalue()

    info = asyncio.run(kit.storage.ingest_dataset(chunks(), "npz"))
    kit.producer.add_dataset(TENANT, info.id, info.to_dict())
    return info.id


def _pretrained(kit, config, x, y):
    """A model trained locally for two epochs (what a user fine-tunes remotely)."""
    import lamina
    from lamina.models import model_from_config

    lamina.utils.set_random_seed(123)
    model = model_from_config(config, safe_mode=True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    return model.get_weights()


def test_job_continues_from_the_uploaded_weights(kit):
    import lamina
    from lamina.models import model_from_config
    from lamina_worker.spec import compile_config

    x, y = kit.blobs(n=160)
    config = kit.mlp_config()
    start = _pretrained(kit, config, x, y)
    spec = kit.spec(config, x, y, epochs=2, replicas=1, seed=5)
    spec["fit"]["initial_weights_id"] = _weights_dataset(kit, start)
    job_id = kit.submit(spec)
    assert kit.worker().run() == 1
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error

    # Local reference: the same seed (shuffle), the same weights, then fit.
    lamina.utils.set_random_seed(5)
    model = model_from_config(config, safe_mode=True)
    model.set_weights(start)
    model.compile(**compile_config(spec))
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    for remote, local in zip(kit.final_weights(job_id), model.get_weights()):
        np.testing.assert_array_equal(remote, local)

    fresh = kit.spec(config, x, y, epochs=2, replicas=1, seed=5)
    fresh_id = kit.submit(fresh)
    assert kit.worker().run() == 1
    assert not all(np.array_equal(a, b) for a, b in
                   zip(kit.final_weights(fresh_id), kit.final_weights(job_id)))


def test_weights_of_another_model_fail_the_job_with_the_counts(kit):
    x, y = kit.blobs(n=64)
    spec = kit.spec(kit.mlp_config(), x, y, epochs=1, replicas=1)
    spec["fit"]["initial_weights_id"] = _weights_dataset(kit, [np.zeros(7, np.float32)])
    job_id = kit.submit(spec)
    kit.worker().run()
    record = kit.wait(lambda: (r := kit.job(job_id)) and r.status.value == "failed" and r,
                      timeout=120, what="the job to fail")
    assert "initial weights hold 7 values" in record.error
