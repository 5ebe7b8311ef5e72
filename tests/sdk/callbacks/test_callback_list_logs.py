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


def test_fit_and_the_callback_list_share_one_conversion_differing_only_in_order():
    from lamina.backend.tensor import Tensor
    from lamina.callbacks.callback_list import pythonify_logs
    from lamina.models.compile_utils import pythonify

    logs = {"loss": Tensor(np.array(0.75)), "z": np.float32(1.5),
            "compile_metrics": {"b_acc": np.array(0.5), "a_mae": 2},
            "vec": np.arange(3), "none": None}
    fit_logs, callback_logs = pythonify(logs), pythonify_logs(logs)
    assert list(fit_logs) == ["loss", "z", "b_acc", "a_mae", "vec", "none"]  # model order
    assert list(callback_logs) == ["a_mae", "b_acc", "loss", "none", "vec", "z"]  # sorted
    assert fit_logs.keys() == callback_logs.keys()
    for key in ("loss", "z", "b_acc", "a_mae"):
        assert type(fit_logs[key]) is float and fit_logs[key] == callback_logs[key]
    assert fit_logs["loss"] == 0.75 and fit_logs["a_mae"] == 2.0
    assert fit_logs["none"] is None and fit_logs["vec"] is logs["vec"]
    assert lamina.callbacks.CallbackList()._call("on_train_batch_end", 0, logs=logs) \
        == callback_logs
