"""lamina.Client against the real API (uvicorn + redis-server), trained by QueueTrainer."""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import time

import numpy as np
import pytest

import lamina
from lamina.client import errors
from tests.sdk.client.conftest import API_KEY, LiveServer, QueueTrainer


def test_import_lamina_does_not_import_httpx():
    import subprocess

    code = ("import sys, lamina; assert 'httpx' not in sys.modules; "
            "assert 'lamina.client' not in sys.modules; lamina.Client; "
            "assert 'httpx' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fit_wait_prints_local_progress_and_returns_history(client, api_settings, compiled_model,
                                                            xy, capsys):
    x, y = xy
    trainer = QueueTrainer(api_settings).start()
    job = client.fit(compiled_model, x, y, batch_size=16, epochs=3, validation_split=0.25,
                     seed=1, name="progress")
    assert re.fullmatch(r"j_[0-9a-f]{24}", job.id) and job.status == "queued"
    history = job.wait(verbose=1)
    trainer.join()
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Epoch")] == [
        "Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    # 48 training samples / 16 = 3 steps; the non-TTY bar prints one line per epoch
    bars = [line for line in out.splitlines() if line.startswith("3/3")]
    assert len(bars) == 3 and all("loss:" in b and "val_loss:" in b for b in bars)
    assert isinstance(history, lamina.callbacks.History)
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert job.status == "succeeded" and job.attempts == 1
    assert job.history == history.history


def test_wait_verbose_2_prints_a_line_per_epoch(client, api_settings, compiled_model, xy, capsys):
    x, y = xy
    trainer = QueueTrainer(api_settings).start()
    client.fit(compiled_model, x, y, batch_size=32, epochs=2).wait(verbose=2)
    trainer.join()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("2/2 - ") and " - loss: " in lines[1]


def test_wait_verbose_0_is_silent(client, api_settings, compiled_model, xy, capsys):
    trainer = QueueTrainer(api_settings).start()
    history = client.fit(compiled_model, *xy, epochs=2).wait(verbose=0)
    trainer.join()
    assert capsys.readouterr().out == ""
    assert len(history.history["loss"]) == 2


def test_model_predicts_like_the_remote_weights(client, api_settings, compiled_model, xy):
    x, y = xy
    trainer = QueueTrainer(api_settings).start()
    job = client.fit(compiled_model, x, y, batch_size=8, epochs=2, seed=3)
    job.wait(verbose=0)
    trainer.join()
    remote = job.model()
    assert isinstance(remote, lamina.Model) and remote.compiled
    np.testing.assert_array_equal(remote.predict(x, verbose=0),
                                  trainer.model.predict(x, verbose=0))
    remote.fit(x, y, epochs=1, verbose=0)  # compiled: trains on locally


def test_second_job_reuses_the_uploaded_dataset(client, api, compiled_model, xy):
    import httpx

    def uploads() -> float:
        metrics = httpx.get(f"{api.url}/metrics").text
        found = re.findall(r'lamina_http_requests_total\{method="POST",route="/v1/datasets",'
                           r'status="201"\} (\S+)', metrics)
        return float(found[0]) if found else 0.0

    before = uploads()
    first = client.fit(compiled_model, *xy, epochs=1)
    second = client.fit(compiled_model, *xy, epochs=2)
    assert first.refresh().dataset_id == second.refresh().dataset_id
    weights = [job.refresh().record["spec"]["fit"]["initial_weights_id"]
               for job in (first, second)]
    assert weights[0] == weights[1] is not None
    assert uploads() == before + 2  # the data and the model's weights, each once


def test_wait_resumes_the_event_stream_after_the_api_restarts(api, api_settings, compiled_model,
                                                              xy, capsys):
    x, y = xy
    client = lamina.Client(api.url, api_key=API_KEY, timeout=5, retries=10)
    # the job holds at epoch 2 until the API is back: it cannot end before the restart
    # (it used to be restarted 0.4 s after the claim, racing 4 epochs of 0.24 s)
    trainer = QueueTrainer(api_settings, batch_delay=0.03, hold_at_epoch=2).start()
    job = client.fit(compiled_model, x, y, batch_size=8, epochs=4)

    def restart():
        try:
            assert trainer.held.wait(60), "the job never reached epoch 2"
            api.stop()  # open SSE connections are dropped
            time.sleep(0.5)  # down for a while: the client's reconnects are refused
            api.start()
        finally:
            trainer.release.set()

    restarter = threading.Thread(target=restart)
    restarter.start()
    history = job.wait(verbose=2)
    restarter.join()
    trainer.join()
    captured = capsys.readouterr()
    assert "connection to" in captured.err and "reconnecting" in captured.err
    epoch_lines = [line for line in captured.out.splitlines() if line.startswith("Epoch")]
    assert epoch_lines == ["Epoch 1/4", "Epoch 2/4", "Epoch 3/4", "Epoch 4/4"]
    assert len([line for line in captured.out.splitlines() if line.startswith("8/8")]) == 4
    assert history.epoch == [0, 1, 2, 3]
    client.close()


def test_failed_job_raises_job_failed_with_the_error(client, api_settings, compiled_model, xy):
    trainer = QueueTrainer(api_settings, fail_with="ValueError: out of memory").start()
    job = client.fit(compiled_model, *xy)
    with pytest.raises(errors.JobFailed, match="out of memory") as info:
        job.wait(verbose=0)
    trainer.join()
    assert info.value.job.status == "failed"
    assert job.error == "ValueError: out of memory"


def test_cancel_a_queued_job(client, compiled_model, xy):
    job = client.fit(compiled_model, *xy, epochs=2)
    assert job.cancel().status == "cancelled"
    with pytest.raises(errors.JobCancelled):
        job.wait(verbose=0)


def test_ctrl_c_on_a_terminal_asks_and_cancels(client, api_settings, compiled_model, xy,
                                               monkeypatch, capsys):
    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    trainer = QueueTrainer(api_settings, batch_delay=0.05).start()
    job = client.fit(compiled_model, *xy, batch_size=4, epochs=20)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    trainer.claimed.wait(10)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        job.wait(verbose=0)
    trainer.join()
    assert job.refresh().status == "cancelled"
    assert f"cancel requested for job {job.id}" in capsys.readouterr().err


def test_ctrl_c_without_a_terminal_just_stops_waiting(client, compiled_model, xy, monkeypatch):
    class Pipe:
        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdin", Pipe())
    job = client.fit(compiled_model, *xy)  # stays queued: no trainer
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        job.wait(verbose=0)
    assert job.refresh().status == "queued"


def test_jobs_lists_newest_first_and_filters(client, compiled_model, xy):
    a = client.fit(compiled_model, *xy, name="a")
    b = client.fit(compiled_model, *xy, name="b")
    b.cancel()
    assert [j.id for j in client.jobs()] == [b.id, a.id]
    assert [j.id for j in client.jobs(status="queued")] == [a.id]
    assert [j.name for j in client.jobs(limit=1)] == ["b"]
    assert client.job(a.id).name == "a"
    with pytest.raises(ValueError, match="status must be one of"):
        client.jobs(status="done")


def test_checkpoints_and_download(client, api_settings, compiled_model, xy, tmp_path):
    from lamina_service.storage import Storage

    trainer = QueueTrainer(api_settings).start()
    job = client.fit(compiled_model, *xy)
    job.wait(verbose=0)
    trainer.join()
    storage = Storage(api_settings.storage_root, 2**30, 2**30)
    (storage.checkpoint_dir(job.id) / "epoch-0001.weights.h5").write_bytes(b"weights")
    assert [c["name"] for c in job.checkpoints()] == ["epoch-0001.weights.h5"]
    path = job.download_checkpoint("epoch-0001.weights.h5", tmp_path / "c.h5")
    assert open(path, "rb").read() == b"weights"
    model_file = job.download(tmp_path / "m.keras")
    assert lamina.models.load_model(model_file).count_params() == compiled_model.count_params()


# -- errors ------------------------------------------------------------------------------
def test_4xx_errors_are_typed_and_carry_the_server_message(client, api, compiled_model, xy):
    with pytest.raises(errors.NotFound) as info:
        client.job("j_" + "0" * 24)
    assert info.value.status == 404 and info.value.field == "job_id"
    assert "no such job" in str(info.value)

    with pytest.raises(errors.LimitExceeded) as info:
        client.fit(compiled_model, *xy, epochs=10**6)
    assert info.value.status == 422 and info.value.field == "fit.epochs"
    assert "max_epochs" in info.value.message

    with pytest.raises(errors.InvalidRequest) as info:
        client.fit(compiled_model, *xy, callbacks=[
            {"class_name": "EarlyStopping", "config": {"patience": -1}}])
    assert info.value.code == "invalid" and "patience" in info.value.field

    with lamina.Client(api.url, api_key="wrong") as stranger:
        with pytest.raises(errors.Unauthorized, match="unknown API key"):
            stranger.jobs()


def test_5xx_is_retried_then_raised(api_settings, compiled_model):
    from lamina_service.redis_server import free_port

    broken = api_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    server = LiveServer(broken).start()
    try:
        with lamina.Client(server.url, api_key=API_KEY, retries=2) as sdk_client:
            sdk_client._http.backoff = 0.01
            started = time.monotonic()
            with pytest.raises(errors.ServiceUnavailable) as info:
                sdk_client.jobs()
            assert info.value.status == 503 and "Redis" in info.value.message
            assert isinstance(info.value, errors.APIError)
            assert time.monotonic() - started < 5
    finally:
        server.stop()


def test_unreachable_service_raises_connection_failed():
    from lamina_service.redis_server import free_port

    with lamina.Client(f"http://127.0.0.1:{free_port()}", retries=2) as sdk_client:
        sdk_client._http.backoff = 0.01
        with pytest.raises(errors.ConnectionFailed, match="after 3 attempts"):
            sdk_client.jobs()


def test_what_cannot_run_remotely_is_refused_locally(client, xy):
    model = lamina.Sequential([lamina.Input(shape=(3,)), lamina.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled model"):
        client.fit(model, *xy)
    model.compile(loss=lamina.losses.Huber(delta=2.0))
    with pytest.raises(ValueError, match="by name only.*Huber"):
        client.fit(model, *xy)
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="LambdaCallback cannot run remotely"):
        client.fit(model, *xy, callbacks=[lamina.callbacks.LambdaCallback()])
    with pytest.raises(ValueError, match="same number of samples"):
        client.fit(model, xy[0], xy[1][:10])


def watch_requests(sdk_client) -> list[list[dict]]:
    """What the client's transport sends, grouped by call (append ``[]`` before each call):
    per request its send time and its answer's status, ``Retry-After`` and arrival time
    (``time.monotonic()``), seen through httpx's event hooks on the real exchanges."""
    calls: list[list[dict]] = []

    def sent(request):
        calls[-1].append({"sent": time.monotonic()})

    def answered(response):
        calls[-1][-1].update(status=response.status_code, answered=time.monotonic(),
                             retry_after=response.headers.get("Retry-After"))

    http = sdk_client._http._client
    hooks = http.event_hooks
    http.event_hooks = {"request": [*hooks["request"], sent],
                        "response": [*hooks["response"], answered]}
    return calls


def test_rate_limited_requests_wait_for_retry_after_then_succeed(api_settings):
    """A 429 from the tenant's token bucket is retried after its Retry-After, and once is
    enough: that wait gives back the missing token. With no retries left the client
    raises RateLimited naming the limit."""
    from lamina_service.config import Quotas

    quotas = Quotas(rate_per_second=1.0, rate_burst=1)
    # The server's Retry-After is the time until the next token, (1 - tokens) / rate with
    # 0 <= tokens < 1, rounded up to whole seconds: between 1 and ceil(1 / rate). Waiting
    # it refills >= 1 token, so with this client alone on the tenant a call is refused at
    # most once (a client that ignores Retry-After, or retries early, is refused again).
    longest_wait = max(1, math.ceil(1 / quotas.rate_per_second))
    refusals_per_call = 1
    # (liveness only: an honest run needs a few seconds, the per-test timeout is 300 s)
    patience = 30 * longest_wait
    server = LiveServer(api_settings.model_copy(update={"quotas": quotas})).start()
    try:
        # retries: room for more refusals than the bound, so that a client breaking it
        # fails the count below rather than raising
        with lamina.Client(server.url, api_key=API_KEY, retries=refusals_per_call + 3) as patient:
            calls = watch_requests(patient)
            deadline = time.monotonic() + patience
            # until two calls were refused (a slow machine may let a token back between
            # two calls: then that call just passes)
            while sum(len(call) > 1 for call in calls) < 2:
                assert time.monotonic() < deadline, f"no 429 in {patience} s: {calls}"
                calls.append([])
                assert patient.jobs() == []
        for call in calls[:quotas.rate_burst]:  # the bucket starts full
            assert [e["status"] for e in call] == [200], calls
        for call in calls:
            assert [e["status"] for e in call[:-1]] == [429] * (len(call) - 1), call
            assert call[-1]["status"] == 200
            assert len(call) - 1 <= refusals_per_call, call
            for refused, retry in zip(call, call[1:]):
                wait = int(refused["retry_after"])
                assert 1 <= wait <= longest_wait, refused
                assert retry["sent"] - refused["answered"] >= wait, call
        with lamina.Client(server.url, api_key=API_KEY, retries=0) as hasty:
            calls = watch_requests(hasty)
            deadline = time.monotonic() + patience
            while True:  # (the bucket is empty now, or nearly: the first call or so)
                assert time.monotonic() < deadline, f"never refused: retried? {calls}"
                calls.append([])
                try:
                    hasty.jobs()
                except errors.RateLimited as exc:
                    info = exc
                    break
                assert [e["status"] for e in calls[-1]] == [200], calls
        assert [e["status"] for e in calls[-1]] == [429]  # raised at once: no retry
        assert info.status == 429 and "rate_per_second" in info.message
    finally:
        server.stop()
