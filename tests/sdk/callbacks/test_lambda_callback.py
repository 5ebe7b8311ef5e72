"""LambdaCallback: Keras's named hooks plus any other on_* hook through kwargs."""

from __future__ import annotations

import pytest

from lamina.callbacks import LambdaCallback


def test_named_and_extra_hooks_are_set():
    calls = []
    cb = LambdaCallback(on_epoch_end=lambda e, logs: calls.append(("epoch", e)),
                        on_train_batch_begin=lambda b, logs: calls.append(("batch", b)),
                        on_test_end=lambda logs: calls.append(("test", logs)))
    cb.on_epoch_end(3, {})
    cb.on_train_batch_begin(1, {})
    cb.on_test_end({"loss": 1.0})
    cb.on_train_begin({})
    assert calls == [("epoch", 3), ("batch", 1), ("test", {"loss": 1.0})]


def test_unknown_hook_is_named():
    with pytest.raises(ValueError, match="on_epoch_middle"):
        LambdaCallback(on_epoch_middle=print)
