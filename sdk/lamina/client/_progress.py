"""Render a remote job's live events as the progress output of local ``fit``.

The events drive the very ``ProgbarLogger`` that local ``fit`` uses, so the bar,
the ``Epoch i/n`` lines and the verbose-2 epoch lines look the same.
"""

from __future__ import annotations

import sys
from typing import Any

from lamina.callbacks.progbar_logger import ProgbarLogger

#: Keys of a batch event that are positions, not metrics.
_POSITION_KEYS = frozenset({"epoch", "batch", "step", "steps", "size", "attempt", "samples",
                            "replicas", "time", "logs"})


def batch_logs(data: dict[str, Any]) -> dict[str, float]:
    """The metrics of a batch event: its ``logs`` dict, or its numeric top-level keys."""
    logs = data.get("logs")
    if not isinstance(logs, dict):
        logs = {k: v for k, v in data.items() if k not in _POSITION_KEYS}
    return {k: v for k, v in logs.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class ProgressRenderer:
    """Feeds ``state``/``batch``/``epoch`` events to a ``ProgbarLogger``.

    Args:
        verbose: 0 (silent), 1 (progress bar) or 2 (one line per epoch).
        epochs: the job's ``fit.epochs``.
        steps: batches per epoch, when known (a batch event's ``steps`` wins).
        stream: where notes (resumes, reconnects) go; the bar itself goes to stdout.
    """

    def __init__(self, verbose: int, epochs: int, steps: int | None, stream=None) -> None:
        self.verbose = verbose
        self.logger = ProgbarLogger()
        self.logger.set_params({"verbose": verbose, "epochs": epochs, "steps": steps})
        self.logger.on_train_begin()
        self.epoch: int | None = None  # the epoch whose bar is open
        self.last_done = -1
        self.attempt: int | None = None
        self.stream = stream
        self.status: str | None = None

    def note(self, text: str) -> None:
        """Print a line outside the bar (on stderr)."""
        if self.verbose:
            stream = self.stream or sys.stderr
            print(text, file=stream, flush=True)

    def _begin(self, epoch: int, steps: int | None = None) -> None:
        if steps:
            self.logger.target = int(steps)
        self.epoch = epoch
        if self.verbose:
            self.logger.on_epoch_begin(epoch)

    def handle(self, type: str, data: Any) -> None:
        """Render one event."""
        if not isinstance(data, dict):
            return
        if type == "state":
            self._state(data)
        elif type == "batch":
            epoch = data.get("epoch")
            epoch = int(epoch) if isinstance(epoch, int) else (
                self.epoch if self.epoch is not None else self.last_done + 1)
            if epoch != self.epoch:
                self._begin(epoch, data.get("steps"))
            done = int(data.get("batch") or 1)  # batches finished in this epoch (1-based)
            if self.verbose:
                self.logger.on_train_batch_end(done - 1, batch_logs(data))
        elif type == "epoch":
            epoch = int(data.get("epoch", self.last_done + 1))
            if epoch != self.epoch:
                self._begin(epoch, data.get("steps"))
            logs = data.get("logs") if isinstance(data.get("logs"), dict) else {}
            if self.verbose:
                self.logger.on_epoch_end(epoch, {k: v for k, v in logs.items()
                                                 if v is not None})
            self.epoch, self.last_done = None, epoch

    def _state(self, data: dict[str, Any]) -> None:
        status = data.get("status")
        attempt = data.get("attempt")
        if status == "running" and isinstance(attempt, int):
            resumed = data.get("resumed_from")
            if isinstance(resumed, dict):
                self.note(f"attempt {attempt}: resumed from the checkpoint of epoch "
                          f"{int(resumed.get('epoch') or 0) + 1}, step {resumed.get('step')}")
                self.epoch = None
            elif self.attempt is not None and attempt != self.attempt:
                self.note(f"attempt {attempt}: the job restarted on a worker")
                self.epoch = None
            self.attempt = attempt
        elif status == "queued" and self.status == "running":
            reason = data.get("requeued") or data.get("error")
            self.note("the job went back to the queue" + (f" ({reason})" if reason else ""))
        self.status = status
