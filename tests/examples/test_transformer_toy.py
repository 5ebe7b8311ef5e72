"""The Transformer example learns to reverse sequences well above chance (0.125)."""

import importlib.util
from pathlib import Path

from threadpoolctl import threadpool_limits

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transformer_toy.py"


def test_transformer_block_reverses_sequences():
    spec = importlib.util.spec_from_file_location("transformer_toy", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The matmuls here are tiny: on a loaded machine multi-threaded BLAS spins instead of
    # computing (100x slower), so the run is pinned to one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        accuracy = module.main()
    assert accuracy >= 0.9
