"""``Progbar``: the progress bar Keras 3 prints during ``fit``.

With a terminal it redraws one line (``\\r``) with the bold counter, a green/white
bar of 20 ``━``, the ETA and the running metrics; without one (logs, pipes,
notebooks' captured output) it prints one plain line when the epoch finishes.
"""

from __future__ import annotations

import numbers
import sys
import time

_BOLD, _RESET, _GREEN, _WHITE = "\x1b[1m", "\x1b[0m", "\x1b[32m", "\x1b[37m"


def format_value(value, verbose: int) -> str:
    """``%.4f`` when the magnitude is above 1e-3, else ``%.4e`` (as Keras)."""
    if not isinstance(value, (int, float)):
        return str(value)
    big = abs(value) > 1e-3 if verbose == 1 else value > 1e-3
    return f"{value:.4f}" if big else f"{value:.4e}"


def format_time_per_step(seconds: float, unit_name: str = "step") -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds: float) -> str:
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


class Progbar:
    """Displays progress of ``target`` steps (``keras.utils.Progbar``).

    Metric values passed to :meth:`update` are averaged over the steps seen (weighted by
    the steps each update covers), except those named in ``stateful_metrics``, which are
    shown as given; ``stateless_metrics`` inverts the default (only those are averaged).
    A final update (``finalize``) shows the values it receives as they are.

    Args:
        target: total number of steps, or None when unknown.
        width: bar width in characters.
        verbose: 0 (silent), 1 (bar) or 2 (one line at the end).
        interval: minimum seconds between redraws.
        stateful_metrics: names of metrics shown as-is (not averaged).
        stateless_metrics: names of the only metrics to average; give at most one of
            ``stateful_metrics`` and ``stateless_metrics``.
        unit_name: the name of one step in the timing (``"step"``, ``"sample"``, ...).
        stream: where to write (``sys.stdout`` by default, looked up at each write).
        dynamic: force redraw mode on/off; by default on when ``stream`` is a TTY.

    Raises:
        ValueError: if both ``stateful_metrics`` and ``stateless_metrics`` are given.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 stateless_metrics=None, unit_name="step", *, stream=None, dynamic=None):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Only one of `stateful_metrics` or `stateless_metrics` can be "
                             f"provided. Received: stateful_metrics={stateful_metrics!r}, "
                             f"stateless_metrics={stateless_metrics!r}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = None, set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        self._stream = stream
        self._dynamic = dynamic
        self._start = time.time()
        self._last_update = 0.0
        self._prev_width = 0
        self._time_after_first = None
        self._seen = 0
        self._values: dict[str, list] = {}

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

    def _accumulate(self, current: int, values, finalize: bool) -> None:
        for name, value in values:
            if self.stateful_metrics is not None:
                averaged = name not in self.stateful_metrics
            else:
                averaged = name in self.stateless_metrics
            if averaged and not finalize and isinstance(value, numbers.Number):
                weight = max(current - self._seen, 1)
                total = self._values.get(name)
                if total is None or total[1] is None:
                    self._values[name] = [value * weight, weight]
                else:
                    total[0] += value * weight
                    total[1] += weight
            else:
                self._values[name] = [value, None]

    def _shown(self) -> list:
        shown = []
        for name, (value, count) in self._values.items():
            if count is not None:
                value = float(value) / max(count, 1)
            shown.append((name, value))
        return shown

    def update(self, current: int, values=None, finalize=None) -> None:
        """Show progress at step ``current``.

        Args:
            current: index of the current step.
            values: a list of ``(name, value_for_last_step)`` tuples.
            finalize: whether this is the last update; None means
                ``current >= target``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        now = time.time()
        if current >= 1 and self._time_after_first is None and self._seen == 0:
            self._time_after_first = now
        self._accumulate(current, values or [], finalize)
        self._seen = current
        if self.verbose == 0:
            return
        if not finalize and (self.verbose == 2 or now - self._last_update < self.interval):
            return
        metrics = "".join(f" - {k}: {format_value(v, self.verbose)}" for k, v in self._shown())
        per_step = format_time_per_step(self._time_per_step(current, now), self.unit_name)
        if self.verbose == 2:
            if finalize:
                count = f"{current}/{self.target}" if self.target else f"{current}"
                self.stream.write(f"{count} - {now - self._start:.0f}s - {per_step}{metrics}\n")
                self.stream.flush()
            return
        self._last_update = now
        dynamic = self.dynamic
        if not dynamic and not finalize:
            return
        if self.target is not None:
            digits = len(str(self.target))
            counter = f"{current:>{digits}}/{self.target}"
            done = min(int(self.width * current / self.target) if self.target else self.width,
                       self.width)
            bar = "━" * done, "━" * (self.width - done)
        else:
            counter, bar = f"{current:7d}/Unknown", ("", "")
        if finalize or self.target is None:
            timing = f"{now - self._start:.0f}s"
        else:
            timing = format_eta(self._time_per_step(current, now) * (self.target - current))
        if dynamic:
            line = (f"{_BOLD}{counter}{_RESET} {_GREEN}{bar[0]}{_RESET}{_WHITE}{bar[1]}{_RESET} "
                    f"{_BOLD}{timing}{_RESET} {per_step}{metrics}")
            text = "\r" + line
            pad = self._prev_width - len(line)
            if pad > 0:
                text += " " * pad
            self._prev_width = len(line)
            if finalize:
                text += "\n"
        else:
            text = f"{counter} {bar[0]}{bar[1]} {timing} {per_step}{metrics}\n"
        self.stream.write(text)
        self.stream.flush()

    def add(self, n: int, values=None) -> None:
        """Advance by ``n`` steps (``update(seen + n, values)``)."""
        self.update(self._seen + n, values)


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
