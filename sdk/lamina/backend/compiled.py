"""Optional compiled kernels (numba) for the loops numpy cannot fuse.

Some primitives (the LSTM's recurrence, the attention core) are a long chain of small
numpy calls: each pays Python's dispatch and a pass over memory, and the two threads
that run them wait for each other's GIL. A kernel compiled with numba's ``nogil=True``
runs such a chain as one call without the GIL. numba is optional: without it, or with
``LAMINA_KERNELS=numpy``, every primitive runs its numpy path, which stays the
reference and is tested against the kernels.

    LAMINA_KERNELS=auto    # default: compiled kernels when numba imports (elementwise
                           # ones from MIN_ELEMENTS elements: see pays())
    LAMINA_KERNELS=numpy   # numpy only
    LAMINA_KERNELS=numba   # compiled kernels at every size; an error when numba is missing

A kernel is declared with :func:`kernel` and compiled on its first call (cached on
disk by numba, so later processes load it). numba is imported only then, or when
Lamina's thread pool starts (its hand-offs spin in compiled loops:
:mod:`lamina.backend.threads`): a model without such a primitive, whose work is too
small for the pool, never pays its import. Where ``lamina warm`` has built the library
of this CPU and these sources (:mod:`lamina.backend.aot`), the kernels it holds run from
it and numba is not imported for them at all.
"""

from __future__ import annotations

import threading

from lamina.backend import aot, env

CHOICES = ("auto", "numpy", "numba")
#: How every kernel (and every helper a kernel calls) is compiled. error_model="numpy":
#: a division by zero gives inf/nan as in numpy; numba's default (raise
#: ZeroDivisionError) checks every division, and that branch kept LLVM from vectorising
#: the LSTM's loops (4-5x).
NUMBA_OPTIONS = {"nogil": True, "cache": True, "error_model": "numpy"}

_lock = threading.Lock()
_switch = env.Switch("LAMINA_KERNELS", CHOICES, "auto")
_available = [None]


def _numba_imports() -> bool:
    if _available[0] is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            _available[0] = False
        else:
            _available[0] = True
    return _available[0]


def choice() -> str:
    """The kernel choice in force: ``auto``, ``numpy`` or ``numba``."""
    return _switch.get()


def enabled() -> bool:
    """True when primitives should run their compiled kernels: numba imports, or the
    library ``lamina warm`` built is there (:mod:`lamina.backend.aot`)."""
    selected = choice()
    if selected == "numpy":
        return False
    if aot.library() is not None or _numba_imports():
        return True
    if selected == "numba":
        raise RuntimeError("LAMINA_KERNELS=numba, but numba is not installed "
                           "(pip install numba, or LAMINA_KERNELS=auto)")
    return False


#: Under ``auto``, an elementwise kernel (an optimizer's update, a keyed draw) runs only on
#: at least this many elements. Loading numba costs a process ~0.8 s and ~120 MB of RSS
#: once; on smaller arrays numpy's passes cost microseconds, so a model made only of such
#: arrays (most small models, and most tests' subprocesses) never pays that import.
MIN_ELEMENTS = 1 << 16


def pays(elements: int) -> bool:
    """Whether an elementwise primitive runs its kernel on ``elements`` elements: always
    under ``numba``, from :data:`MIN_ELEMENTS` under ``auto`` (when numba imports), never
    under ``numpy``. The kernels give the numpy path's bits, so only the speed differs."""
    selected = choice()
    if selected == "numpy" or (selected == "auto" and elements < MIN_ELEMENTS):
        return False
    return enabled()


def set_kernels(value: str) -> None:
    """Choose ``auto``, ``numpy`` or ``numba`` for this process (overrides the env)."""
    _switch.set(value)


def use_kernels(value: str):
    """Run a block with the kernel choice ``value`` (tests compare both paths)."""
    return _switch.use(value)


class kernel:  # noqa: N801 - used as a decorator, like numba.njit
    """``@kernel`` compiles the function with numba (``nogil``, ``cache``, numpy's error
    model) on first call, or runs it from the library ``lamina warm`` built
    (:mod:`lamina.backend.aot`) without importing numba, when that library has it.

    numba-only helpers a module's kernels call (intrinsics, external functions, other
    ``njit`` functions) come from the module's ``_numba_globals()``, which the first
    compile of one of its kernels calls and merges into the module's namespace, so that
    importing the module does not import numba.

    The plain Python function stays reachable as ``.py`` (for debugging); callers
    check :func:`enabled` and run their numpy path otherwise.
    """

    def __init__(self, function):
        self.py = function
        self._compiled = None
        self._call = None
        self.__name__ = function.__name__
        self.__doc__ = function.__doc__
        self.qualified_name = f"{function.__module__}.{function.__qualname__}"

    def __call__(self, *args):
        call = self._call
        if call is None:
            call = self._bind()
        return call(*args)

    def _bind(self):
        with _lock:
            if self._call is None:
                found = aot.entry(self.qualified_name)
                self._call = self.jit if found is None else found.with_fallback(self.jit)
        return self._call

    def jit(self, *args):
        """Run numba's compiled function (compiling it on first call)."""
        compiled = self._compiled
        if compiled is None:
            with _lock:
                if self._compiled is None:
                    import numba

                    namespace = self.py.__globals__
                    helpers = namespace.get("_numba_globals")
                    if helpers is not None and not namespace.get("_numba_globals_merged"):
                        namespace.update(helpers())
                        namespace["_numba_globals_merged"] = True
                    self._compiled = numba.njit(**NUMBA_OPTIONS)(self.py)
                compiled = self._compiled
        return compiled(*args)
