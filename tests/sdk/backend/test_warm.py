"""``lamina warm``: compile the kernels once; a later process loads every one of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lamina.backend import gemm

pytest.importorskip("numba")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

#: The benchmark models at the bench's batch (products past gemm.MIN_FLOPS, the pool's
#: parts), an LSTM and an attention block: what a worker's replicas run.
TRAIN = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import lamina as keras, lamina_models
from lamina.backend import warm
layers = keras.layers
rng = np.random.default_rng(0)
y = rng.integers(0, 10, 256)
def fit(model, x):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
for kind in ("mlp", "cnn"):
    fit(lamina_models.build(kind, keras), rng.random((256, 28, 28, 1), np.float32))
fit(keras.Sequential([keras.Input((28, 28)), layers.LSTM(64), layers.Dense(10)]),
    rng.random((256, 28, 28), np.float32))
inputs = keras.Input((32, 16))
h = layers.MultiHeadAttention(2, 8)(inputs, inputs)
fit(keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling1D()(h))),
    rng.random((256, 32, 16), np.float32))
print(json.dumps(warm.cache_counts()))
"""


def _run(args, cache, **env):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), **env}
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "sdk"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _json(done):
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_warm_compiles_once_and_later_processes_load_every_kernel(tmp_path):
    """The first warm compiles every kernel and builds the ahead-of-time library
    (lamina.backend.aot); a process training every model family then compiles nothing
    (the library's kernels, numba's cache for the rest); a second warm neither compiles
    nor rebuilds."""
    cache = tmp_path / "numba-cache"
    library = str(tmp_path / "kernels")
    first = _json(_run(["-m", "lamina.cli", "warm", "--json"], cache, LAMINA_AOT_DIR=library))
    assert first["compiled"] > 20 and first["loaded"] == 0, first
    assert len(first["replicas"]) == 2
    # The GEMM driver's overloads are compiled only where its kernel runs (AVX-512).
    least = 20 if gemm._why_not() is None else 12
    assert first["library"]["built"] is True and first["library"]["entries"] > least, first
    assert first["library"]["path"].startswith(library)
    trained = _json(_run(["-c", TRAIN, os.path.join(ROOT, "bench")], cache,
                         LAMINA_AOT_DIR=library))
    assert trained["compiled"] == 0 and trained["loaded"] > 0, trained
    again = _json(_run(["-m", "lamina.cli", "warm", "--json"], cache, LAMINA_AOT_DIR=library))
    assert again["compiled"] == 0 and again["loaded"] > 0, again
    assert again["library"]["built"] is False, again["library"]
    # The replicas of a 2-replica fit (the collective's kernels included) run every
    # kernel from the library: numba is not even imported.
    assert [r["compiled"] for r in again["replicas"]] == [0, 0], again["replicas"]
    assert all(r["library_calls"] > 0 and r["numba"] is False for r in again["replicas"]), \
        again["replicas"]


def test_warm_says_why_when_the_kernels_are_off(tmp_path):
    done = _run(["-m", "lamina.cli", "warm"], tmp_path, LAMINA_KERNELS="numpy")
    assert done.returncode == 1
    assert "LAMINA_KERNELS=numpy" in done.stderr


def test_warm_says_why_when_numba_is_missing(tmp_path):
    """As without the ``fast`` extra: ``import numba`` fails."""
    code = ("import sys; sys.modules['numba'] = None; "
            "from lamina.cli import main; sys.exit(main(['warm']))")
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 1
    assert "numba is not installed" in done.stderr and "lamina[fast]" in done.stderr
