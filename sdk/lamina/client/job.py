"""``Job``: one remote training job, as the service reports it."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from lamina.client import errors
from lamina.client._progress import ProgressRenderer
from lamina.client._spec import steps_per_epoch
from lamina.client.protocol import JOB_STATUSES, TERMINAL_STATUSES

STATUSES = JOB_STATUSES
TERMINAL = TERMINAL_STATUSES


class Job:
    """A training job on a Lamina service; get one from ``Client.fit`` or ``Client.job``.

    Attributes are the job's record as last read (:meth:`refresh` reads it again).

    Attributes:
        id: the job id (``j_...``).
        name: the label given at submission.
        status: one of ``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled``.
        attempts: how many times a worker started it (more than 1 after a worker loss).
        epoch: last finished epoch (0-based), or None.
        history: per-epoch logs, ``{"loss": [...], "val_loss": [...]}`` like
            ``History.history``.
        error: the last error message, or None.
        record: the full JSON record of the job.
    """

    def __init__(self, client, record: dict[str, Any]) -> None:
        self._client = client
        self.record: dict[str, Any] = {}
        self._steps_hint: int | None = None
        self._update(record)

    def _update(self, record: dict[str, Any]) -> None:
        spec = record.get("spec") or self.record.get("spec")
        self.record = {**self.record, **record}
        if spec is not None:
            self.record["spec"] = spec

    def __getattr__(self, name: str) -> Any:
        record = self.__dict__.get("record", {})
        if name in ("name", "dataset_id", "epoch", "worker", "final_logs", "cancel_requested",
                    "submitted_at", "started_at", "finished_at", "has_model", "spec"):
            return record.get(name)
        raise AttributeError(f"'Job' object has no attribute {name!r}")

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def status(self) -> str:
        return str(self.record.get("status"))

    @property
    def attempts(self) -> int:
        return int(self.record.get("attempts") or 0)

    @property
    def history(self) -> dict[str, list[float | None]]:
        return dict(self.record.get("history") or {})

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def done(self) -> bool:
        """True once the job succeeded, failed or was cancelled (as last read)."""
        return self.status in TERMINAL

    def __repr__(self) -> str:
        return f"<Job {self.id} status={self.status} attempts={self.attempts}>"

    @property
    def _path(self) -> str:
        return f"/v1/jobs/{self.id}"

    def refresh(self) -> Job:
        """Read the job's current record from the service; returns ``self``."""
        self._update(self._client._http.json("GET", self._path))
        return self

    def cancel(self) -> Job:
        """Cancel the job: a queued job at once, a running one after its current batch."""
        self._update(self._client._http.json("POST", f"{self._path}/cancel"))
        return self

    def checkpoints(self) -> list[dict[str, Any]]:
        """The job's checkpoint files: ``[{"name", "bytes", "modified"}]``."""
        return self._client._http.json("GET", f"{self._path}/checkpoints")

    def download_checkpoint(self, name: str, path: str | os.PathLike) -> str:
        """Save the checkpoint ``name`` (as listed by :meth:`checkpoints`) to ``path``."""
        return self._save(f"{self._path}/checkpoints/{name}", path)

    def download(self, path: str | os.PathLike) -> str:
        """Save the trained model (a ``.keras`` file) to ``path``; returns the path.

        Raises:
            NotFound: the job has no final model (yet).
        """
        return self._save(f"{self._path}/model", path)

    def _save(self, url_path: str, path: str | os.PathLike) -> str:
        response = self._client._http.request("GET", url_path)
        path = os.fspath(path)
        tmp = f"{path}.part"
        with open(tmp, "wb") as handle:
            handle.write(response.content)
        os.replace(tmp, path)
        return path

    def model(self, compile: bool = True):  # noqa: A002 - Keras's argument name
        """The trained model, loaded from the job's final ``.keras`` file.

        Args:
            compile: restore the compile configuration and optimizer state.

        Returns:
            A ``lamina.Model``.
        """
        from lamina.models import load_model

        with tempfile.TemporaryDirectory(prefix="lamina-model-") as folder:
            path = self.download(os.path.join(folder, f"{self.id}.keras"))
            return load_model(path, compile=compile)

    # -- following ---------------------------------------------------------------------
    def _render_params(self) -> tuple[int, int | None]:
        if self.spec is None:
            self.refresh()
        spec = self.spec or {}
        fit = spec.get("fit") or {}
        epochs = int(fit.get("epochs") or 1)
        steps = self._steps_hint
        if steps is None and spec.get("dataset_id"):
            try:
                meta = self._client._http.json("GET", f"/v1/datasets/{spec['dataset_id']}")
                steps = steps_per_epoch(int(meta["samples"]), int(fit.get("batch_size") or 32),
                                        float(fit.get("validation_split") or 0.0))
            except errors.APIError:
                steps = None
        return epochs, steps

    def events(self, last_event_id: str | None = None):
        """Iterate the job's live events (``lamina.client._http.Event``) until it ends."""
        return self._client._http.events(f"{self._path}/events", last_event_id)

    def wait(self, verbose: int = 1):
        """Follow the job until it ends, printing the progress local ``fit`` prints.

        A dropped connection is retried with backoff and the event stream resumed
        where it stopped. Ctrl-C asks (on a terminal) whether to cancel the job, then
        stops waiting.

        Args:
            verbose: 0 silent, 1 progress bar, 2 one line per epoch.

        Returns:
            A ``lamina.callbacks.History`` whose ``history`` is the job's per-epoch logs.

        Raises:
            JobFailed: the job failed (``error`` says why).
            JobCancelled: the job was cancelled.
            KeyboardInterrupt: Ctrl-C.
        """
        epochs, steps = self._render_params()
        renderer = ProgressRenderer(verbose, epochs, steps)
        last_event_id = None
        dropped = [False]

        def on_retry(attempt, exc):
            if not dropped[0]:
                renderer.note(f"\nconnection to {self._client.url} lost ({exc}); reconnecting")
            dropped[0] = True

        try:
            while True:
                for event in self._client._http.events(f"{self._path}/events", last_event_id,
                                                       on_retry=on_retry):
                    last_event_id = event.id or last_event_id
                    dropped[0] = False
                    renderer.handle(event.type, event.data)
                if renderer.status not in TERMINAL:
                    # The server closed the stream early (restart, proxy timeout): resume.
                    on_retry(0, "the event stream ended early")
                self.refresh()
                if self.done:
                    break
        except KeyboardInterrupt:
            self._interrupted()
            raise
        return self._finish()

    def _interrupted(self) -> None:
        print(file=sys.stderr)
        if not (sys.stdin and sys.stdin.isatty()):
            return
        try:
            answer = input(f"Cancel job {self.id} on the service? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            self.cancel()
            print(f"cancel requested for job {self.id}", file=sys.stderr)
        else:
            print(f"job {self.id} keeps running; follow it again with "
                  f"lamina logs {self.id} --follow", file=sys.stderr)

    def _finish(self):
        from lamina.callbacks import History

        history = History()
        history.history = {k: list(v) for k, v in self.history.items()}
        length = max((len(v) for v in history.history.values()), default=0)
        history.epoch = list(range(length))
        if self.status == "failed":
            raise errors.JobFailed(self, f"job {self.id} failed after {self.attempts} "
                                         f"attempt(s): {self.error}")
        if self.status == "cancelled":
            raise errors.JobCancelled(self, f"job {self.id} was cancelled")
        return history
