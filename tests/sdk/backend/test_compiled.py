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


def test_elementwise_kernels_pay_from_min_elements_under_auto_and_always_under_numba():
    pytest.importorskip("numba")
    small, large = compiled.MIN_ELEMENTS - 1, compiled.MIN_ELEMENTS
    with compiled.use_kernels("auto"):
        assert not compiled.pays(small) and compiled.pays(large)
    with compiled.use_kernels("numba"):
        assert compiled.pays(small) and compiled.pays(1)
    with compiled.use_kernels("numpy"):
        assert not compiled.pays(large)


_FIT = """
import sys
import numpy as np
import lamina as keras
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((UNITS,)), keras.layers.Dense(UNITS, activation="relu"),
                          keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
model.fit(rng.random((256, UNITS), dtype=np.float32), rng.integers(0, 10, 256),
          batch_size=128, epochs=1, verbose=0)
print("numba" in sys.modules)
"""


@pytest.mark.parametrize("units, loads", [(16, False), (512, True)])
def test_auto_loads_numba_only_for_a_model_whose_arrays_pay(units, loads):
    """A small model with Adam and Dropout trains without importing numba (its ~0.8 s and
    ~120 MB); the benchmark MLP's 512-wide layers (a (128, 512) dropout draw, a 262k
    kernel) load it."""
    pytest.importorskip("numba")
    result = subprocess.run([sys.executable, "-c", f"UNITS = {units}\n" + _FIT],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "LAMINA_KERNELS": "auto"})
    assert result.stdout.strip() == str(loads)
