"""Every hook of a CallbackList hands its callbacks a dict, as Keras's does."""

from __future__ import annotations

import numpy as np

import lamina


class _Recorder(lamina.callbacks.Callback):
    """Records (hook, type of logs, sorted keys) for the predict hooks."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def _record(self, hook, logs):
        self.seen.append((hook, type(logs), sorted(logs)))

    def on_predict_begin(self, logs=None):
        self._record("begin", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._record("batch_begin", logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._record("batch_end", logs)

    def on_predict_end(self, logs=None):
        self._record("end", logs)


def test_predict_batch_hooks_get_dicts(model):
    rec = _Recorder()
    model.predict(np.zeros((5, 3), "float32"), batch_size=2, verbose=0, callbacks=[rec])
    hooks = [h for h, _, _ in rec.seen]
    assert hooks == ["begin"] + ["batch_begin", "batch_end"] * 3 + ["end"]
    assert all(t is dict for _, t, _ in rec.seen)
    assert [k for h, _, k in rec.seen if h == "batch_begin"] == [[], [], []]
    assert [k for h, _, k in rec.seen if h == "batch_end"] == [["outputs"]] * 3


def test_callback_list_called_directly_with_no_logs():
    rec = _Recorder()
    cbs = lamina.callbacks.CallbackList([rec])
    cbs.on_predict_batch_begin(0)
    cbs.on_predict_batch_end(0)
    assert rec.seen == [("batch_begin", dict, []), ("batch_end", dict, [])]


def test_pythonify_logs_passes_floats_and_converts_scalars():
    from lamina.callbacks.callback_list import pythonify_logs

    loss = 0.25
    logs = pythonify_logs({"loss": loss, "b": np.float32(1.5), "a": np.array(2.0),
                           "nested": {"acc": np.float64(0.5)}, "vec": np.arange(2),
                           "name": "x"})
    assert list(logs) == ["a", "b", "loss", "name", "acc", "vec"]  # sorted, flattened
    assert logs["loss"] is loss
    assert [type(logs[k]) for k in ("a", "acc", "b")] == [float, float, float]
    assert (logs["a"], logs["acc"], logs["b"]) == (2.0, 0.5, 1.5)
    assert logs["name"] == "x" and logs["vec"] is not None and list(logs["vec"]) == [0, 1]
