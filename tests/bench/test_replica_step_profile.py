"""bench/replica_step_profile.py's A/B switch end to end on a tiny two-replica run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.slow
def test_ab_claims_switches_claimed_blocks_per_epoch():
    """``--ab claims``: each rank prints its medians for claims off (even epochs) and on
    (odd epochs); the ranks take claimed blocks in the "on" epochs only."""
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "replica_step_profile.py"),
         "--world", "2", "--model", "mlp", "--epochs", "3", "--samples", "2048",
         "--batch", "128", "--ab", "claims"],
        capture_output=True, text=True, timeout=300, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sorted((r["rank"], r["on"]) for r in rows) == [
        (0, False), (0, True), (1, False), (1, True)], out
    assert all(r["ab"] == "claims" and r["steps"] == 16 for r in rows), out
    blocks = {on: sum(r["ms"]["blocks_mean"] for r in rows if r["on"] == on)
              for on in (False, True)}
    # The MLP's slot is 10 work blocks a step, each taken by exactly one rank.
    assert blocks == {False: 0, True: 10}, blocks


def test_ab_refuses_an_unknown_switch():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "replica_step_profile.py"),
         "--ab", "nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--ab: invalid choice: 'nope'" in result.stderr
