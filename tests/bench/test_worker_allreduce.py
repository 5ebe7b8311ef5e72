"""bench/worker_allreduce.py end to end on a tiny run: the table, the per-epoch spans
(quiet.Span) and the rounds (whole runs of every setup, interleaved)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.slow
def test_epochs_carry_their_spans(tmp_path):
    spans = tmp_path / "spans.json"
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "worker_allreduce.py"), "--models", "mlp",
         "--setups", "local1", "--epochs", "3", "--rounds", "2", "--mlp-samples", "4096",
         "--spans-json", str(spans)],
        capture_output=True, text=True, timeout=240, check=True).stdout
    assert "| mlp | local fit, 1 thread | " in out  # the table the notes parse, unchanged
    # Ratios to setups that did not run (local 2 threads, 1 replica, 2 independent fits)
    # read "-", not "nanx".
    assert re.search(
        r"^\| mlp \| local fit, 1 thread \| [\d.]+ \| [\d,]+ \| - \| - \| - \| - \|$",
        out, re.M), out
    runs = re.findall(r"mlp local fit, 1 thread epochs: (.*)", out)
    assert len(runs) == 2, out  # one line a round
    for line in runs:
        epochs = line.split("; ")
        assert len(epochs) == 3 and all(re.fullmatch(
            r"\d+\.\d{3} s \(others -?\d+\.\d\d CPU, steal \d+\.\d\d, load \d+\.\d\)", e)
            for e in epochs), epochs
    rounds = re.findall(r"^\| mlp \| (\d) \| ([\d.]+) s \|$", out, re.M)
    assert [r for r, _ in rounds] == ["1", "2"], out
    row = re.search(r"\| mlp \| local fit, 1 thread \| ([\d.]+) \| [\d,]+ \| (\d) of 4 \|", out)
    assert row, out
    records = json.loads(spans.read_text())
    assert [(r["round"], r["epoch"]) for r in records] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    # The summary is the median over both rounds' timed epochs (not over one round, and
    # not counting the warm-ups), to the table's two decimals.
    timed = sorted(r["seconds"] for r in records if r["epoch"] > 0)
    assert abs(float(row.group(1)) - (timed[1] + timed[2]) / 2) <= 0.005 + 1e-9, (row, timed)
    def sampling_slack(seconds, spans=1):
        # /proc/stat charges each CPU's whole 10 ms tick to what runs at the tick, so
        # the machine's busy time is a sample: over n ticks a CPU busy a share p of the
        # time reads off by sqrt(n p (1 - p)) ticks (one standard deviation; at most
        # sqrt(n) / 2), plus a tick a CPU at each span's edges. The tree's time is exact
        # (getrusage and the kernel's per-task runtime). Four deviations, in CPU.
        ticks = seconds / 0.01
        return (2 * spans + 4 * 0.5 * (ncpu * ticks) ** 0.5) * 0.01 / seconds

    ncpu = records[0]["span"]["ncpu"]
    for r in records:
        # One BLAS thread training: the tree is busy about one CPU (less when shared)
        # and within the machine's busy time; the span brackets the timed epoch.
        span = r["span"]
        assert 0.3 < span["tree"] <= span["busy"] + sampling_slack(span["seconds"]), span
        assert span["seconds"] >= r["seconds"], r
    # Over all epochs together the sample is longer and the slack tighter.
    total = sum(r["span"]["seconds"] for r in records)
    tree = sum(r["span"]["tree"] * r["span"]["seconds"] for r in records) / total
    busy = sum(r["span"]["busy"] * r["span"]["seconds"] for r in records) / total
    assert tree <= busy + sampling_slack(total, len(records)), (tree, busy, total)
    quiet = sum(r["span"]["others"] < 0.3 for r in records if r["epoch"] > 0)
    assert int(row.group(2)) == quiet
    # Without --thread-stats the spans read no thread's files (they cost the replicas'
    # CPUs): no run-queue wait, no context switches.
    assert all(r["span"]["wait"] is None and r["span"]["nvcsw"] is None for r in records)


@pytest.mark.slow
def test_two_independent_fits_run_at_once_on_their_halves(tmp_path):
    spans = tmp_path / "spans.json"
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "worker_allreduce.py"), "--models", "mlp",
         "--setups", "local1,independent2", "--epochs", "3", "--rounds", "1",
         "--mlp-samples", "4096", "--spans-json", str(spans)],
        capture_output=True, text=True, timeout=300, check=True).stdout
    assert re.search(r"bench-mlp-independent: pids \[\d+, \d+\] in this process's tree: True",
                     out), out
    # Its own ratio is 1.00x; local fit on one thread against it is the ceiling's share.
    row = re.search(r"^\| mlp \| 2 independent fits \| [\d.]+ \| ([\d,]+) \| - \| - \| "
                    r"1\.00x \| - \|$", out, re.M)
    assert row, out
    one = re.search(r"^\| mlp \| local fit, 1 thread \| [\d.]+ \| ([\d,]+) \| - \| - \| "
                    r"([\d.]+)x \| - \|$", out, re.M)
    assert one, out
    # The ratio is the two setups' rates (whole samples/s: the epoch seconds' two decimals
    # are too coarse for this run's ~0.1 s epochs).
    rate = {name: float(m.group(1).replace(",", "")) for name, m in (("pair", row),
                                                                     ("one", one))}
    assert abs(float(one.group(2)) - rate["one"] / rate["pair"]) <= 0.006, out
    records = [r for r in json.loads(spans.read_text()) if r["setup"] == "2 independent fits"]
    assert len(records) == 3
    # Each of the two runs fits half the samples at half the batch: the same steps as one
    # replica of two, each run on one BLAS thread; one span covers the whole of both.
    assert len({json.dumps(r["span"]) for r in records}) == 1
    span = records[0]["span"]
    assert span["seconds"] >= max(r["seconds"] for r in records)
    assert 0.8 < span["tree"] <= span["busy"] + 0.3, span


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "--epochs must be >= 2 (the first is a warm-up) and --rounds >= 1. "
                        "Received: --epochs 4, --rounds 0"),
    (["--epochs", "1"], "Received: --epochs 1, --rounds 3"),
    (["--setups", "local2,replicas9"], "--setups takes a comma-separated subset of "
                                      "local1,local2,replicas1,replicas2,independent2. "
                                      "Received: 'local2,replicas9'"),
])
def test_bad_arguments_are_refused_naming_them(argv, message):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "worker_allreduce.py"), *argv],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr
