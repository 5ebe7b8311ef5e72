"""The compiled-kernel switch (``lamina.backend.compiled``)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lamina.backend import compiled


@compiled.kernel
def _axpy(a, x, y):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = a * x[i] + y[i]
    return out


def test_a_kernel_computes_what_its_python_does():
    pytest.importorskip("numba")
    x, y = np.arange(5, dtype=np.float32), np.ones(5, np.float32)
    np.testing.assert_array_equal(_axpy(np.float32(2), x, y), _axpy.py(np.float32(2), x, y))
    assert _axpy.__name__ == "_axpy"


def test_use_kernels_switches_and_restores():
    before = compiled.choice()
    with compiled.use_kernels("numpy"):
        assert compiled.choice() == "numpy" and not compiled.enabled()
    assert compiled.choice() == before


def test_bad_choices_name_the_argument():
    with pytest.raises(ValueError, match=r"value='fast'"):
        compiled.set_kernels("fast")
    code = "import lamina.backend.compiled as c; c.enabled()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "LAMINA_KERNELS": "jit"})
    assert result.returncode != 0 and "LAMINA_KERNELS='jit'" in result.stderr


def test_numpy_choice_never_imports_numba():
    code = ("import sys, lamina.backend.compiled as c; c.set_kernels('numpy'); "
            "assert not c.enabled(); print('numba' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
