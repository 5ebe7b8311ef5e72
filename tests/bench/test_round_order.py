"""The side-by-side benches rotate the order of their children each round (no framework
always runs first, on a machine that has just been idle, or after the same neighbour)
and still print each round's columns in one fixed order."""

from __future__ import annotations

import json
import os
import sys

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, BENCH)
import common  # noqa: E402

CHILD = ("import json, sys\n"
         "open(sys.argv[2], 'a').write(sys.argv[1] + '\\n')\n"
         "print(json.dumps({'train_samples_per_s': 100.0 * len(sys.argv[1])}))\n")


def test_round_order_rotates_by_one_each_round():
    names = ["lamina", "torch", "keras"]
    assert [common.round_order(names, r) for r in range(4)] == [
        ["lamina", "torch", "keras"], ["torch", "keras", "lamina"],
        ["keras", "lamina", "torch"], ["lamina", "torch", "keras"]]
    assert common.round_order(["lamina"], 5) == ["lamina"]


def test_side_by_side_runs_children_in_rotated_order_and_prints_columns_in_one(
        tmp_path, monkeypatch, capsys):
    ran = tmp_path / "ran.txt"
    # Two real child processes stand in for the frameworks a machine may lack.
    monkeypatch.setattr(common, "runners", lambda: [("lamina", sys.executable, None),
                                                    ("torch", sys.executable, None)])
    results = common.side_by_side(
        3, lambda name, python: [python, "-c", CHILD, name, str(ran)])
    assert ran.read_text().split() == ["lamina", "torch", "torch", "lamina", "lamina", "torch"]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0] == common.blas_line()  # which kernels the figures below measured
    assert lines[0].startswith("numpy's BLAS: ") and "; float32 GEMM: " in lines[0]
    lines = lines[1:]
    assert len(lines) == 3
    for line, order in zip(lines, ("lamina, torch", "torch, lamina", "lamina, torch")):
        assert line.startswith("lamina 600 samples/s (") and "   torch 500 samples/s (" in line
        assert line.endswith(f"(ran: {order})"), line
    assert {name: [r["train_samples_per_s"] for r in rs] for name, rs in results.items()} == {
        "lamina": [600.0] * 3, "torch": [500.0] * 3}
    assert all("others" in r["span"] for rs in results.values() for r in rs)
    json.dumps(results)  # plain data, as the benches print and store it
