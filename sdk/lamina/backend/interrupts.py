"""Ctrl-C that lands in a finalizer still stops ``fit``.

Python raises ``KeyboardInterrupt`` in the main thread at the next bytecode it runs.
When that bytecode belongs to a finalizer (a ``weakref.finalize`` callback, such as the
one that gives a recurrent node's scratch arrays back to :mod:`rnn_buffers`, or a
``__del__``), the interpreter cannot raise it to the caller: it reports it through
``sys.unraisablehook`` ("Exception ignored in: ...") and goes on, and a ``fit`` of a
thousand epochs keeps training after the user pressed Ctrl-C.

While a training loop runs inside :func:`watch`, a ``KeyboardInterrupt`` reported as
unraisable is remembered, and :func:`check` (called by the loop after every batch, in
the main thread) raises it there. Interrupts that reach the loop normally are not
touched, and a ``KeyboardInterrupt`` that user code catches on purpose is not raised
again. The hook is installed only while a loop runs and chains to the one it replaced.
"""

from __future__ import annotations

import contextlib
import sys
import threading

_lock = threading.Lock()
_depth = [0]
_previous = [None]
_swallowed = threading.Event()


def _hook(unraisable) -> None:
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        _swallowed.set()
    previous = _previous[0] or sys.__unraisablehook__
    previous(unraisable)


@contextlib.contextmanager
def watch():
    """Remember Ctrl-C swallowed by finalizers while the block runs (nestable)."""
    with _lock:
        if _depth[0] == 0:
            _swallowed.clear()
            _previous[0] = sys.unraisablehook
            sys.unraisablehook = _hook
        _depth[0] += 1
    try:
        yield
    finally:
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0:
                if sys.unraisablehook is _hook:
                    sys.unraisablehook = _previous[0]
                _previous[0] = None


def check() -> None:
    """Raise ``KeyboardInterrupt`` if one was swallowed by a finalizer (main thread)."""
    if _swallowed.is_set() and threading.current_thread() is threading.main_thread():
        _swallowed.clear()
        raise KeyboardInterrupt
