"""Which kernel runs a float32 matrix product: Lamina's own or numpy's BLAS.

On a CPU with AVX-512, Lamina multiplies float32 matrices with its own register kernel
(:mod:`lamina.backend.gemm_kernels`: LLVM IR compiled by llvmlite for the host, driven
from numba without the GIL). It exists because numpy's OpenBLAS may not use the CPU it
runs on: an ``OPENBLAS_CORETYPE`` set for the machine (these machines set ``Haswell``)
holds it to 256-bit kernels, ~125 GFLOP/s on one core here against the kernel's
~220-260 at the shapes of a layer's forward and backward products (docs/architecture.md).
Lamina leaves the variable alone (it belongs to whoever set it); it brings a kernel of
its own instead.

Its results are exact under cuts: every element is summed over ``k`` in the same order
wherever it sits, so a product split into row or column ranges (the thread pool's
parts) gives the bits of the whole product. They are not numpy's bits: a model's
numbers move by float32 rounding when the choice changes, never between two runs with
the same choice.

    LAMINA_GEMM=auto    # default: Lamina's kernel on an AVX-512 CPU when compiled kernels
                        # are on (LAMINA_KERNELS, not numpy) for products of at least
                        # MIN_FLOPS; numpy's BLAS otherwise, and also under
                        # LAMINA_THREADS=off (BLAS's own threads: the kernel runs on the
                        # threads of Lamina's pool only)
    LAMINA_GEMM=lamina  # Lamina's kernel for every float32 2-D product; an error when it
                        # cannot run here (no AVX-512, no numba/llvmlite)
    LAMINA_GEMM=blas    # numpy's BLAS (np.matmul) only
"""

from __future__ import annotations

import ctypes
import logging
import threading

import numpy as np

from lamina.backend import compiled, env
from lamina.backend.blas_threads import get_thread_policy

#: The register kernel's C type: ``ukr(kc, a, a_row_stride, a_k_stride, b, ldb, out,
#: ldo, accumulate, mr, mask0, mask1)`` (strides in floats).
KERNEL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                               ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                               ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                               ctypes.c_int64, ctypes.c_int32, ctypes.c_int32)
#: The register kernel's name in the ahead-of-time library, and the driver's.
UKR_SYMBOL = "lamina_gemm_ukr"
DRIVER = "lamina.backend.gemm_kernels.gemm_driver"

CHOICES = ("auto", "lamina", "blas")
#: Under ``auto``, smaller products run on numpy's BLAS: they cost microseconds either
#: way, and a model made only of them never imports numba (~0.8 s, ~120 MB) for this.
MIN_FLOPS = 1 << 20

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_switch = env.Switch("LAMINA_GEMM", CHOICES, "auto")
#: ``[(kernel, driver)]`` once compiled (``gemm_kernels``' ctypes kernel and its numba
#: driver), ``[None]`` when it cannot run here
_kernel: list = []


def choice() -> str:
    """The GEMM choice in force: ``auto``, ``lamina`` or ``blas``."""
    return _switch.get()


def set_gemm(value: str) -> None:
    """Choose ``auto``, ``lamina`` or ``blas`` for this process (overrides the env)."""
    _switch.set(value)


def use_gemm(value: str):
    """Run a block with the GEMM choice ``value`` (tests compare the kernels)."""
    return _switch.use(value)


def _why_not() -> str | None:
    """Why Lamina's kernel cannot run in this process (None: it can)."""
    from lamina.backend.blas_threads import _cpu_has

    if not _cpu_has("avx512f"):
        return "the CPU has no AVX-512 (avx512f)"
    if not compiled.enabled():
        return "compiled kernels are off or numba is missing (LAMINA_KERNELS)"
    return None


def describe() -> str:
    """Which GEMM float32 products take in this process, in a few words (for logs and
    benchmark headers; does not compile the kernel)."""
    selected = choice()
    if selected == "blas":
        return "numpy's BLAS (LAMINA_GEMM=blas)"
    why = _why_not()
    if why is not None:
        return f"numpy's BLAS ({why})"
    if selected == "lamina":
        return "Lamina's AVX-512 kernel for every float32 product (LAMINA_GEMM=lamina)"
    return (f"Lamina's AVX-512 kernel for float32 products of >= {MIN_FLOPS:,} flops "
            "(LAMINA_GEMM=auto)")


def kernel():
    """The compiled register kernel, or None when it cannot run here (compiled once)."""
    if not _kernel:
        with _lock:
            if not _kernel:
                found = None
                if _why_not() is None:
                    try:
                        found = _from_library() or _compiled_now()
                    except Exception as exc:  # an old llvmlite, an odd host: use BLAS
                        _log.warning("Lamina's GEMM kernel did not compile (%s: %s); "
                                     "products run on numpy's BLAS", type(exc).__name__,
                                     exc)
                _kernel.append(found)
    return None if _kernel[0] is None else _kernel[0][0]


def _compiled_now():
    """``(ukr, driver)`` compiled in this process (llvmlite and numba)."""
    from lamina.backend import gemm_kernels

    return gemm_kernels.compile_kernel(), gemm_kernels.gemm_driver


def _numba_driver(*args):
    from lamina.backend import gemm_kernels

    return gemm_kernels.gemm_driver(*args)


def _from_library():
    """``(ukr, driver)`` from the ahead-of-time library (:mod:`lamina.backend.aot`):
    the register kernel the library exports, and the driver's overloads (numba's driver
    for other operand layouts); None when the library lacks either."""
    from lamina.backend import aot

    address = aot.exported(UKR_SYMBOL)
    driver = aot.entry(DRIVER)
    if address is None or driver is None:
        return None
    return KERNEL_TYPE(address), driver.with_fallback(_numba_driver)


def uses_kernel(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a @ b`` (2-D operands) runs on Lamina's kernel under the choice in
    force. Decided on the whole product: its parts must all run the same kernel.

    Raises:
        RuntimeError: under ``LAMINA_GEMM=lamina`` when the kernel cannot run here.
    """
    selected = choice()
    if selected == "blas" or a.dtype != np.float32 or b.dtype != np.float32 \
            or a.ndim != 2 or b.ndim != 2:
        return False
    if selected == "auto" and (2 * a.shape[0] * a.shape[1] * b.shape[1] < MIN_FLOPS
                               or compiled.choice() == "numpy"
                               or get_thread_policy() == "off"):
        return False
    if kernel() is not None:
        return True
    if selected == "lamina":
        raise _unavailable()
    return False


def _unavailable() -> RuntimeError:
    return RuntimeError(f"LAMINA_GEMM=lamina, but Lamina's GEMM kernel cannot run here: "
                        f"{_why_not() or 'it did not compile (see the log)'}")


def kernel_for(dtype):
    """Lamina's kernel for the products inside a compiled kernel (numba is in already,
    so no :data:`MIN_FLOPS`), or None for BLAS: for float32 unless ``LAMINA_GEMM=blas``.

    Raises:
        RuntimeError: under ``LAMINA_GEMM=lamina`` when the kernel cannot run here.
    """
    selected = choice()
    if selected == "blas" or np.dtype(dtype) != np.float32:
        return None
    found = kernel()
    if found is None and selected == "lamina":
        raise _unavailable()
    return found


def matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray,
                use_kernel: bool | None = None) -> np.ndarray:
    """``out[...] = a @ b`` for 2-D operands; returns ``out``.

    ``use_kernel``: the whole product's :func:`uses_kernel` when ``a``/``b`` are parts of
    it (None: decide for this product). Read-only operands, and an ``out`` whose rows are
    not contiguous, take numpy's BLAS.
    """
    if use_kernel is None:
        use_kernel = uses_kernel(a, b)
    if use_kernel and out.dtype == np.float32 and out.strides[-1] == 4 \
            and a.flags.writeable and b.flags.writeable:
        ukr, driver = _kernel[0]
        if transposes(a, b):
            flipped = np.empty((b.shape[1], a.shape[0]), np.float32)
            driver(ukr, b.T, a.T, flipped, False)
            np.copyto(out, flipped.T)
        else:
            driver(ukr, a, b, out, False)
    else:
        np.matmul(a, b, out=out)
    return out


def _rows_contiguous(x: np.ndarray) -> bool:
    return x.strides[1] == x.itemsize and x.strides[0] % x.itemsize == 0


def transposes(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the kernel computes ``a @ b`` as ``(b.T @ a.T).T``: when ``b`` would be
    packed (its columns, not its rows, are contiguous: a layer's ``g @ W.T``) and
    packing ``a.T`` plus transposing the ``m x n`` result moves fewer floats than
    packing ``b``'s ``k x n`` -- a small batch against a large weight (64 rows against
    512 x 512: 0.16 against 0.23 ms). The bits are the same: each element is the same
    products summed over ``k`` in the same order."""
    m, k = a.shape
    n = b.shape[1]
    return (not _rows_contiguous(b) and _rows_contiguous(b.T) and _rows_contiguous(a)
            and m * (k + n) < k * n)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (2-D float32 operands on Lamina's kernel when :func:`uses_kernel`; any
    other operands: ``np.matmul``)."""
    if a.ndim != 2 or b.ndim != 2 or not uses_kernel(a, b):
        return np.matmul(a, b)
    return matmul_into(a, b, np.empty((a.shape[0], b.shape[1]), np.float32), True)
