"""BackupAndRestore: a fit killed with SIGKILL and restarted ends bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lamina.callbacks import BackupAndRestore, LambdaCallback

TRAIN_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys

    import numpy as np

    import lamina
    from lamina import layers

    backup_dir, out, kill_epoch, marker, save_freq = sys.argv[1:6]
    kill_epoch = int(kill_epoch)
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)
    lamina.utils.set_random_seed(123)
    model = lamina.Sequential([
        lamina.Input((6,)),
        layers.Dense(16, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(16, activation="relu"),
        layers.Dropout(0.2, seed=7),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = rng.integers(0, 3, size=96)


    class Killer(lamina.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == kill_epoch and batch == 2 and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)


    schedule = lamina.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.8 ** epoch)
    history = model.fit(x, y, epochs=6, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[Killer(), schedule,
                                   lamina.callbacks.BackupAndRestore(backup_dir,
                                                                     save_freq=save_freq)])
    arrays = model.get_weights() + [v.numpy() for v in model.optimizer.variables]
    np.savez(out, *arrays)
    with open(out + ".json", "w") as f:
        json.dump({"epoch": history.epoch, "history": history.history}, f)
""")


def train(tmp_path, name, kill_epoch, save_freq="epoch"):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    out = str(tmp_path / f"{name}.npz")
    args = [sys.executable, str(script), str(tmp_path / f"backup-{name}"), out,
            str(kill_epoch), str(tmp_path / f"killed-{name}"), str(save_freq)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240)
    return proc, out


def load(out):
    with np.load(out) as f:
        arrays = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    with open(out + ".json") as f:
        return arrays, json.load(f)


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    proc, ref_out = train(tmp_path, "reference", kill_epoch=-1)
    assert proc.returncode == 0, proc.stderr
    reference, ref_meta = load(ref_out)
    assert ref_meta["epoch"] == [0, 1, 2, 3, 4, 5]

    proc, out = train(tmp_path, "resumed", kill_epoch=3)
    assert proc.returncode == -signal.SIGKILL
    assert os.listdir(tmp_path / "backup-resumed") == ["latest.backup.h5"]
    assert not os.path.exists(out)

    proc, out = train(tmp_path, "resumed", kill_epoch=3)
    assert proc.returncode == 0, proc.stderr
    resumed, meta = load(out)
    assert meta["epoch"] == [3, 4, 5]
    assert not os.path.exists(tmp_path / "backup-resumed")  # deleted at train end
    assert len(resumed) == len(reference)
    for got, want in zip(resumed, reference):
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)
    for key, values in meta["history"].items():
        assert values == ref_meta["history"][key][3:], key


def test_sigkill_with_batch_save_freq_resumes_the_interrupted_epoch(tmp_path):
    proc, _ = train(tmp_path, "batches", kill_epoch=2, save_freq=4)
    assert proc.returncode == -signal.SIGKILL
    proc, out = train(tmp_path, "batches", kill_epoch=2, save_freq=4)
    assert proc.returncode == 0, proc.stderr
    _, meta = load(out)
    # As in Keras: the epoch reached restarts from its beginning.
    assert meta["epoch"] == [2, 3, 4, 5]


def test_resume_in_process_continues_from_the_backup(make_model, data, tmp_path):
    x, y = data
    model = make_model(optimizer="adam")
    stop_after_epoch_1 = LambdaCallback(on_epoch_end=lambda e, logs: setattr(
        model, "stop_training", e == 1))
    backup = BackupAndRestore(tmp_path / "bk", delete_checkpoint=False)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[stop_after_epoch_1, backup])
    assert int(model.optimizer.iterations.numpy()) == 8  # 2 epochs of 4 steps

    fresh = make_model(optimizer="adam", seed=5)
    epochs = []
    fresh.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[
        LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e)), backup])
    assert epochs == [2]
    # The restored optimizer state was the starting point: one more epoch of 4 steps.
    assert int(fresh.optimizer.iterations.numpy()) == 12


def test_restored_values_match_saved(make_model, data, tmp_path):
    x, y = data
    model = make_model(optimizer="adam")
    backup = BackupAndRestore(tmp_path / "bk", delete_checkpoint=False)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[backup])
    weights = model.get_weights()
    slots = [v.numpy() for v in model.optimizer.variables]

    other = make_model(optimizer="adam", seed=3)
    other.stop_training = False
    backup.set_model(other)
    backup.on_train_begin()
    assert other._initial_epoch == 2
    for got, want in zip(other.get_weights(), weights):
        assert np.array_equal(got, want)
    for got, want in zip([v.numpy() for v in other.optimizer.variables], slots):
        assert np.array_equal(got, want)


def test_reusable_across_fits(make_model, data, tmp_path):
    x, y = data
    model = make_model()
    backup = BackupAndRestore(tmp_path / "bk")
    first = model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    assert not os.path.exists(tmp_path / "bk")
    second = model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    assert first.epoch == second.epoch == [0, 1]


def test_crash_keeps_backup_and_next_fit_resumes(make_model, data, tmp_path):
    x, y = data
    model = make_model()

    def crash(epoch, logs):
        if epoch == 1:
            raise RuntimeError("boom")

    backup = BackupAndRestore(tmp_path / "bk")
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[backup, LambdaCallback(
            on_epoch_end=crash)])
    assert os.path.exists(tmp_path / "bk" / "latest.backup.h5")
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[backup])
    assert history.epoch == [2, 3]
    assert not os.path.exists(tmp_path / "bk")


def test_double_checkpoint_falls_back_to_previous(make_model, data, tmp_path):
    x, y = data
    model = make_model()
    backup = BackupAndRestore(tmp_path / "bk", double_checkpoint=True, delete_checkpoint=False)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    assert sorted(os.listdir(tmp_path / "bk")) == ["latest.backup.h5", "latest.backup.h5.bkp"]
    (tmp_path / "bk" / "latest.backup.h5").write_bytes(b"corrupt")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[backup])
    assert history.epoch == [1, 2]


def test_mismatched_model_raises(make_model, data, tmp_path):
    x, y = data
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[BackupAndRestore(tmp_path / "bk", delete_checkpoint=False)])
    import lamina

    other = lamina.Sequential([lamina.Input((3,)), lamina.layers.Dense(1)])
    other.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="does not match this model: it holds 4 model "
                                         "variables, the model has 2"):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path / "bk")])


@pytest.mark.parametrize("kwargs,message", [
    (dict(backup_dir=""), "Empty `backup_dir` argument passed"),
    (dict(backup_dir="d", save_freq="batch"), "Invalid value for argument `save_freq`. "
                                              "Received: save_freq=batch"),
    (dict(backup_dir="d", save_freq=0), "save_freq=0"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        BackupAndRestore(**kwargs)
    assert message in str(info.value)


def test_unbuilt_model_raises(data, tmp_path):
    import lamina

    class Sub(lamina.Model):
        def __init__(self):
            super().__init__()
            self.dense = lamina.layers.Dense(1)

        def call(self, inputs, training=None):
            return self.dense(inputs)

    model = Sub()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data
    with pytest.raises(ValueError, match="you model must be built before you call `fit\\(\\)`"):
        model.fit(x, y, verbose=0, callbacks=[BackupAndRestore(tmp_path / "bk")])
