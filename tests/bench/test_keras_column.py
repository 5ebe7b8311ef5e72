"""The benches' Keras (JAX) column: one model code run by Lamina and by real Keras.

The Keras runs need a Python with Keras 3 on JAX (bench/common.keras_python(): the CI's
build/keras-venv or a side venv such as /work/kvenv); they skip without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, BENCH)
import common  # noqa: E402


def _run(cmd: list[str], env: dict | None = None) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_keras_env_selects_jax_and_drops_our_pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/sdk")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    env = common.keras_env()
    assert env["KERAS_BACKEND"] == "jax"
    assert "PYTHONPATH" not in env
    assert os.environ["PYTHONPATH"] == "/somewhere/sdk"  # ours is left alone


def test_keras_python_none_when_disabled_or_nothing_imports_keras(monkeypatch):
    monkeypatch.setenv("LAMINA_BENCH_KERAS_PYTHON", "none")
    assert common.keras_python() is None
    # a Python without keras (this one, in the project's venv) is probed and refused
    monkeypatch.setenv("LAMINA_BENCH_KERAS_PYTHON", sys.executable)
    monkeypatch.setattr(common, "KERAS_CANDIDATES", ())
    has_keras = subprocess.run([sys.executable, "-c", "import keras"], capture_output=True,
                               env=common.keras_env()).returncode == 0
    assert common.keras_python() == (sys.executable if has_keras else None)


@pytest.mark.slow
def test_same_model_code_trains_in_lamina_and_keras():
    kpython = common.keras_python()
    if kpython is None:
        pytest.skip("no Python with Keras 3 on JAX")
    args = [os.path.join(BENCH, "lamina_models.py"), "--model", "mlp", "--samples", "512",
            "--epochs", "2"]
    ours = json.loads(_run([sys.executable, *args]).splitlines()[-1])
    theirs = json.loads(_run([kpython, *args, "--framework", "keras"],
                             env=common.keras_env()).splitlines()[-1])
    assert (ours["framework"], theirs["framework"]) == ("lamina", "keras")
    assert ours["params"] == theirs["params"] == 784 * 512 + 512 + 512 * 512 + 512 + 5130
    assert theirs["train_samples_per_s"] > 0 and len(theirs["epoch_seconds"]) == 2


@pytest.mark.slow
def test_ratio_prints_the_keras_column_and_ratios_or_one_line_without_keras():
    if common.keras_python() is None:
        pytest.skip("no Python with Keras 3 on JAX")
    cmd = [sys.executable, os.path.join(BENCH, "ratio.py"), "--model", "mlp", "--samples",
           "512", "--epochs", "2", "--rounds", "1"]
    lines = _run(cmd).splitlines()
    rounds = [line for line in lines if line.startswith("lamina ")]
    assert len(rounds) == 1 and " keras " in rounds[0] and "others " in rounds[0], lines
    assert any(line.startswith("mlp: lamina/keras train throughput = ") for line in lines)
    if " torch " in rounds[0]:
        assert any(line.startswith("mlp: lamina/torch train throughput = ") for line in lines)
        assert any(line.startswith("mlp: keras/torch train throughput = ") for line in lines)

    without = _run(cmd, env={**os.environ, "LAMINA_BENCH_KERAS_PYTHON": "none"}).splitlines()
    assert without[0].startswith("keras not found"), without
    assert not any("keras" in line for line in without[1:]), without
