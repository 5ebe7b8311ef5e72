"""The worker loop's final-model publish (``Worker._write_model``) under fencing."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lamina_service.storage import Storage
from lamina_worker.errors import Fenced
from lamina_worker.loop import Worker

JOB = SimpleNamespace(id="j_" + "ab" * 12)


def model(value: float):
    import lamina
    from lamina import layers

    net = lamina.Sequential([layers.Input((3,)), layers.Dense(2)])
    net.set_weights([np.full((3, 2), value, np.float32), np.zeros(2, np.float32)])
    return net


class Lease:
    """Stands for :class:`lamina_worker.callbacks.Lease`: ``confirm`` runs ``on_call``."""

    def __init__(self, on_call=lambda n: None):
        self.calls, self.on_call = 0, on_call

    def confirm(self) -> None:
        self.calls += 1
        self.on_call(self.calls)


def write_model(storage, net, lease) -> str:
    return Worker._write_model(SimpleNamespace(storage=storage), JOB, net, lease)


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path, 1 << 20, 1 << 20)


def test_a_zombie_woken_after_the_new_owner_saved_its_model_replaces_nothing(storage):
    """The zombie's lease check passes, then it sleeps right before its publish while
    the new owner saves ``model.keras`` and commits (its digest is in the job record);
    every later check refuses. The owner's file stays byte for byte and no temp is
    left: the committed digest still describes the served file."""
    final = storage.model_path(JOB.id)
    owner = {}

    def pause_then_refuse(n):
        if n == 1:
            owner["artifact"] = write_model(storage, model(5.0), Lease())
            owner["bytes"] = final.read_bytes()
        else:
            raise Fenced("job j_...: another attempt owns it")

    with pytest.raises(Fenced):
        write_model(storage, model(9.0), Lease(pause_then_refuse))
    assert final.read_bytes() == owner["bytes"]
    assert [p.name for p in final.parent.iterdir()] == ["model.keras"]
    import hashlib

    digest = hashlib.sha256(final.read_bytes()).hexdigest()
    assert owner["artifact"] == f"model.keras@sha256:{digest[:16]}"


def test_a_model_left_by_a_dead_attempt_is_replaced_after_a_second_check(storage):
    """``model.keras`` of an attempt that died before its commit is replaced by the
    next attempt's, after one more lease check made once the name was found taken."""
    final = storage.model_path(JOB.id)
    write_model(storage, model(1.0), Lease())
    lease = Lease()
    artifact = write_model(storage, model(2.0), lease)
    assert lease.calls == 2
    import hashlib

    assert artifact.endswith(hashlib.sha256(final.read_bytes()).hexdigest()[:16])
    import lamina

    loaded = lamina.saving.load_model(str(final))
    assert float(loaded.get_weights()[0][0, 0]) == 2.0
