"""The worker says at start which BLAS kernels its replicas will run, and warns when
OPENBLAS_CORETYPE holds them below the CPU (an operator's setting it cannot change)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lamina.backend import blas_threads
from tests.sdk.backend.blas_counts import environ_with_coretype, numpys_wheel_openblas_or_skip


@pytest.mark.parametrize("coretype", ["Haswell", None])
def test_the_worker_logs_its_blas_and_warns_when_the_variable_holds_it_back(coretype):
    ctl = numpys_wheel_openblas_or_skip()
    code = ("import logging, sys; logging.basicConfig(level='INFO', stream=sys.stderr, "
            "format='%(levelname)s %(name)s: %(message)s'); "
            "from lamina_worker import main; main._log_blas()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=environ_with_coretype(coretype)).stderr
    info = [line for line in out.splitlines() if line.startswith("INFO lamina_worker: ")]
    assert len(info) == 1 and f"numpy's BLAS: openblas {ctl.version}, " in info[0]
    assert f"(OPENBLAS_CORETYPE={coretype or 'unset'}); float32 GEMM: " in info[0]
    from lamina.backend import gemm

    assert info[0].endswith(gemm.describe())  # (same environment but the variable)
    warned = [line for line in out.splitlines() if line.startswith("WARNING lamina_worker: ")]
    held = coretype == "Haswell" and blas_threads._cpu_has("avx512f")
    assert len(warned) == (1 if held else 0), out
    if held:
        assert "Haswell kernels" in info[0] and "OPENBLAS_CORETYPE=Haswell holds" in warned[0]
