"""The update overlapped with backward (lamina.optimizers.backward_overlap).

Seeded ``fit`` runs the same steps in the three modes (the whole-step update, the
update begun during backward, and its last parts running into the next step): weights
and every optimizer variable must be byte-identical, and each mode must really have
taken its path (parts started on the pool; steps left running into the next one).
"""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina.backend import threads
from lamina.optimizers import backward_overlap, base, pieces
from tests.sdk.backend.interrupt import interrupt_fit

MODES = {"whole": (False, False), "backward": (True, False), "next_step": (True, True)}


def _fit(mode, monkeypatch, optimizer="adam", callbacks=None, constraint=None,
         epochs=2, steps=6):
    """Seeded fit of a 256-256-256-10 MLP (its kernels over ``MIN_ELEMENTS``); the bytes
    of its weights and optimizer variables, and what the overlap did."""
    monkeypatch.setattr(backward_overlap, "enabled", MODES[mode][0])
    monkeypatch.setattr(backward_overlap, "into_next_step", MODES[mode][1])
    seen = {"starts": 0, "deferred": 0}
    start, wait = pieces.UpdateInPieces.start, base.Optimizer.wait_for_update

    def counted_start(self, indices, grads, wake=True):
        seen["starts"] += 1
        return start(self, indices, grads, wake)

    def counted_wait(self):
        seen["deferred"] += self._still_running is not None
        return wait(self)

    monkeypatch.setattr(pieces.UpdateInPieces, "start", counted_start)
    # (a stall under load would run a while without workers: no overlap to check)
    monkeypatch.setattr(threads, "_note_wait", lambda waited, lost: None)
    monkeypatch.setitem(threads._state, "solo_until", 0.0)
    monkeypatch.setattr(base.Optimizer, "wait_for_update", counted_wait)
    lamina.utils.set_random_seed(3)
    layers = lamina.layers
    model = lamina.Sequential([
        lamina.Input((256,)), layers.Dense(256, "relu", kernel_constraint=constraint),
        layers.Dropout(0.2), layers.Dense(256, "relu"), layers.Dense(10, "softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * 32, 256)).astype(np.float32)
    y = rng.integers(0, 10, steps * 32)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
    assert model.optimizer._still_running is None  # fit waited for its last step
    assert int(model.optimizer.iterations.data) == epochs * steps
    state = [w.tobytes() for w in model.get_weights() + model.optimizer.get_weights()]
    return state, seen


def test_seeded_fit_gives_the_bits_of_the_whole_step_update(pool_of_two, monkeypatch):
    whole, seen = _fit("whole", monkeypatch)
    assert seen == {"starts": 0, "deferred": 0}
    during, seen = _fit("backward", monkeypatch)
    assert during == whole
    assert seen["starts"] > 0 and seen["deferred"] == 0
    into_next, seen = _fit("next_step", monkeypatch)
    assert into_next == whole
    assert seen["starts"] > 0 and seen["deferred"] > 0


def test_denormal_flushes_and_constraints_wait_for_the_whole_update(pool_of_two,
                                                                    monkeypatch):
    monkeypatch.setattr(base.Optimizer, "denormal_flush_interval", 2)
    whole, _ = _fit("whole", monkeypatch)
    flushed, seen = _fit("next_step", monkeypatch)
    assert flushed == whole
    assert 0 < seen["deferred"] < 12  # the flushing steps (every other one) waited
    nonneg = lamina.constraints.NonNeg()
    whole, _ = _fit("whole", monkeypatch, constraint=nonneg)
    constrained, seen = _fit("next_step", monkeypatch, constraint=nonneg)
    assert constrained == whole
    assert seen["starts"] > 0 and seen["deferred"] == 0


def test_a_callback_sees_every_update_done(pool_of_two, monkeypatch):
    seen_by_callback = []

    class Watch(lamina.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            opt = self.model.optimizer
            seen_by_callback.append((opt._still_running, int(opt.iterations.data)))

    whole, _ = _fit("whole", monkeypatch)
    watched, seen = _fit("next_step", monkeypatch, callbacks=[Watch()])
    assert watched == whole
    assert seen["starts"] > 0 and seen["deferred"] == 0
    assert seen_by_callback[-1] == (None, 12)
    assert all(running is None for running, _ in seen_by_callback)


@pytest.mark.parametrize("optimizer", [
    lambda: lamina.optimizers.Adam(clipnorm=1.0),
    lambda: lamina.optimizers.AdamW(weight_decay=0.01),
    lambda: lamina.optimizers.Adafactor(),
], ids=["clipnorm", "weight_decay", "not_elementwise"])
def test_optimizers_that_need_every_gradient_keep_the_whole_step(pool_of_two, monkeypatch,
                                                                 optimizer):
    whole, _ = _fit("whole", monkeypatch, optimizer=optimizer(), epochs=1, steps=3)
    overlapped, seen = _fit("next_step", monkeypatch, optimizer=optimizer(), epochs=1,
                            steps=3)
    assert overlapped == whole
    assert seen == {"starts": 0, "deferred": 0}


def test_without_workers_the_step_is_whole(monkeypatch):
    threads.set_thread_policy(1)
    try:
        assert threads.active_threads() == 1
        _, seen = _fit("next_step", monkeypatch, epochs=1, steps=3)
    finally:
        threads.set_thread_policy("auto")
    assert seen == {"starts": 0, "deferred": 0}


@pytest.mark.slow
def test_ctrl_c_during_an_overlapped_fit_stops_cleanly(monkeypatch):
    monkeypatch.setenv("LAMINA_BACKWARD_OVERLAP", "1")  # (the child's default is off)
    code, out = interrupt_fit(
        (784,), 'lamina.layers.Dense(512, "relu"), lamina.layers.Dense(512, "relu"), '
        'lamina.layers.Dense(10)', 4096)
    assert code == 3
    assert "interrupted" in out
