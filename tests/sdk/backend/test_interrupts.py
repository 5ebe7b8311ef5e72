"""Ctrl-C swallowed by a finalizer still stops fit, evaluate and predict."""

import sys
import weakref

import numpy as np
import pytest

import lamina
from lamina.backend import interrupts


class _Garbage:
    pass


def _swallowed_interrupt():
    """What a SIGINT landing inside a weakref finalizer does: the callback raises
    KeyboardInterrupt and the interpreter reports it as unraisable and goes on."""
    def interrupted():
        raise KeyboardInterrupt

    garbage = _Garbage()
    weakref.finalize(garbage, interrupted)
    del garbage  # the finalizer runs here; nothing reaches the caller


class _SwallowAt(lamina.callbacks.Callback):
    def __init__(self, hook, step):
        super().__init__()
        self.hook, self.step, self.batches = hook, step, 0

    def _maybe(self, batch):
        self.batches += 1
        if batch == self.step:
            _swallowed_interrupt()

    def on_train_batch_end(self, batch, logs=None):
        if self.hook == "train":
            self._maybe(batch)

    def on_test_batch_end(self, batch, logs=None):
        if self.hook == "test":
            self._maybe(batch)

    def on_predict_batch_end(self, batch, logs=None):
        if self.hook == "predict":
            self._maybe(batch)


def _model():
    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(2)])
    model.compile("sgd", "mse")
    return model


@pytest.fixture
def quiet_unraisable(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_type))
    return seen


@pytest.mark.parametrize("hook", ["train", "test", "predict"])
def test_an_interrupt_swallowed_by_a_finalizer_stops_the_loop_at_that_batch(
        quiet_unraisable, hook):
    model = _model()
    x, y = np.ones((64, 4), np.float32), np.zeros((64, 2), np.float32)
    callback = _SwallowAt(hook, step=2)
    with pytest.raises(KeyboardInterrupt):
        if hook == "train":
            model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[callback])
        elif hook == "test":
            model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[callback])
        else:
            model.predict(x, batch_size=8, verbose=0, callbacks=[callback])
    assert callback.batches == 3  # stopped right after the batch it happened in
    assert quiet_unraisable == [KeyboardInterrupt]  # the hook before fit still saw it
    assert sys.unraisablehook is not interrupts._hook  # and is back in place


def test_an_interrupt_caught_on_purpose_is_not_raised_again(quiet_unraisable):
    class CatchOwn(lamina.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                self.model.stop_training = True

    model = _model()
    x, y = np.ones((16, 4), np.float32), np.zeros((16, 2), np.float32)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[CatchOwn()])
    assert len(history.history["loss"]) == 1
    assert quiet_unraisable == []


def test_an_interrupt_swallowed_outside_a_loop_does_not_stop_the_next_fit(quiet_unraisable):
    _swallowed_interrupt()
    model = _model()
    x, y = np.ones((16, 4), np.float32), np.zeros((16, 2), np.float32)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_watch_nests_and_restores_the_previous_hook(quiet_unraisable):
    previous = sys.unraisablehook
    with interrupts.watch():
        with interrupts.watch():
            assert sys.unraisablehook is interrupts._hook
        assert sys.unraisablehook is interrupts._hook
    assert sys.unraisablehook is previous
