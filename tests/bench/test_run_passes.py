"""`make bench` measures numpy's BLAS as the environment sets it and, when that
environment sets OPENBLAS_CORETYPE, once more without it (issue 13 asks for both)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import run  # noqa: E402


def test_both_adds_a_pass_without_the_variable_only_when_it_is_set():
    environ = {"OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": "/x"}
    (label_a, env_a), (label_b, env_b) = run.passes("both", environ)
    assert label_a == "as-is (OPENBLAS_CORETYPE=Haswell)" and env_a == environ
    assert label_b == "OPENBLAS_CORETYPE unset" and env_b == {"PYTHONPATH": "/x"}
    assert environ == {"OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": "/x"}  # untouched
    [(label, env)] = run.passes("both", {"PYTHONPATH": "/x"})
    assert label == "as-is (OPENBLAS_CORETYPE unset)" and env == {"PYTHONPATH": "/x"}


def test_one_pass_each_way_and_a_named_error_otherwise():
    environ = {"OPENBLAS_CORETYPE": "Zen"}
    assert run.passes("as-is", environ) == [("as-is (OPENBLAS_CORETYPE=Zen)", environ)]
    assert run.passes("unset", environ) == [("OPENBLAS_CORETYPE unset", {})]
    with pytest.raises(ValueError, match=r"Received: coretype='fast'"):
        run.passes("fast", environ)
