"""The calls of tests/fixtures/ops/parity_cases.py run on Lamina give Keras 3.15.1's
outputs (recorded by make_fixtures.py): values, shapes and dtypes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lamina import ops

FIXTURES = Path(__file__).parents[2] / "fixtures/ops"
FIX = np.load(FIXTURES / "ops_fixtures.npz", allow_pickle=False)


def _cases():
    spec = importlib.util.spec_from_file_location("lamina_ops_parity_cases",
                                                  FIXTURES / "parity_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run(ops, np)


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_keras(name):
    got = CASES[name]
    want = [FIX[k] for k in sorted((k for k in FIX.files if k.startswith(f"parity_{name}_")
                                    and k[len(f"parity_{name}_"):].isdigit()),
                                   key=lambda k: int(k.rsplit("_", 1)[1]))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        if np.issubdtype(w.dtype, np.inexact):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
        else:
            np.testing.assert_array_equal(g, w)
