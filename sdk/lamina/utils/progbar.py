"""``Progbar``: the progress bar Keras 3 prints during ``fit``.

With a terminal it redraws one line (``\\r``) with the bold counter, a green/white
bar of 20 ``━``, the ETA and the running metrics; without one (logs, pipes,
notebooks' captured output) it prints one plain line when the epoch finishes.
"""

from __future__ import annotations

import sys
import time

_BOLD, _RESET, _GREEN, _WHITE = "\x1b[1m", "\x1b[0m", "\x1b[32m", "\x1b[37m"


def format_value(value, verbose: int) -> str:
    """``%.4f`` when the magnitude is above 1e-3, else ``%.4e`` (as Keras)."""
    if not isinstance(value, (int, float)):
        return str(value)
    big = abs(value) > 1e-3 if verbose == 1 else value > 1e-3
    return f"{value:.4f}" if big else f"{value:.4e}"


def format_time_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def format_eta(seconds: float) -> str:
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


class Progbar:
    """Displays progress of ``target`` steps.

    Args:
        target: total number of steps, or None when unknown.
        width: bar width in characters.
        verbose: 1 (bar) or 2 (one line at the end).
        interval: minimum seconds between redraws.
        stream: where to write (``sys.stdout`` by default, looked up at each write).
        dynamic: force redraw mode on/off; by default on when ``stream`` is a TTY.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stream=None, dynamic=None):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self._stream = stream
        self._dynamic = dynamic
        self._start = time.time()
        self._last_update = 0.0
        self._prev_width = 0
        self._time_after_first = None
        self._seen = 0

    @property
    def stream(self):
        from lamina.config import is_interactive_logging_enabled

        if self._stream is None and not is_interactive_logging_enabled():
            return _LOG_STREAM
        return self._stream or sys.stdout

    @property
    def dynamic(self) -> bool:
        if self._dynamic is not None:
            return self._dynamic
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _time_per_step(self, current: int, now: float) -> float:
        if current <= 1 or self._time_after_first is None:
            return (now - self._start) / max(current, 1)
        return (now - self._time_after_first) / max(current - 1, 1)

    def update(self, current: int, values=None, finalize=None) -> None:
        """Show progress at step ``current`` with ``values`` (a list of (name, value))."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        now = time.time()
        if current >= 1 and self._time_after_first is None and self._seen == 0:
            self._time_after_first = now
        self._seen = current
        if not finalize and (self.verbose == 2 or now - self._last_update < self.interval):
            return
        values = values or []
        metrics = "".join(f" - {k}: {format_value(v, self.verbose)}" for k, v in values)
        per_step = self._time_per_step(current, now)
        if self.verbose == 2:
            if finalize:
                count = f"{current}/{self.target}" if self.target else f"{current}"
                self.stream.write(f"{count} - {now - self._start:.0f}s - "
                                  f"{format_time_per_step(per_step)}{metrics}\n")
                self.stream.flush()
            return
        self._last_update = now
        dynamic = self.dynamic
        if not dynamic and not finalize:
            return
        if self.target is not None:
            digits = len(str(self.target))
            counter = f"{current:>{digits}}/{self.target}"
            done = int(self.width * current / self.target) if self.target else self.width
            bar = "━" * done, "━" * (self.width - done)
        else:
            counter, bar = f"{current:7d}/Unknown", ("", "")
        if finalize:
            timing = f"{now - self._start:.0f}s"
        elif self.target is not None:
            timing = format_eta(per_step * (self.target - current))
        else:
            timing = f"{now - self._start:.0f}s"
        if dynamic:
            line = (f"{_BOLD}{counter}{_RESET} {_GREEN}{bar[0]}{_RESET}{_WHITE}{bar[1]}{_RESET} "
                    f"{_BOLD}{timing}{_RESET} {format_time_per_step(per_step)}{metrics}")
            text = "\r" + line
            pad = self._prev_width - len(line)
            if pad > 0:
                text += " " * pad
            self._prev_width = len(line)
            if finalize:
                text += "\n"
        else:
            text = (f"{counter} {bar[0]}{bar[1]} {timing} "
                    f"{format_time_per_step(per_step)}{metrics}\n")
        self.stream.write(text)
        self.stream.flush()


class _LogStream:
    """A text stream that sends each finished line to the ``lamina`` logger.

    Used when ``keras.config.disable_interactive_logging()`` is in effect; a line that
    ``\r`` redraws is logged only as its last version.
    """

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        import logging

        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            line = line.rsplit("\r", 1)[-1].strip()
            if line:
                logging.getLogger("lamina").info(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


_LOG_STREAM = _LogStream()
