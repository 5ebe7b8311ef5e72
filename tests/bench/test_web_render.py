"""bench/web_render.py end to end on a tiny run (20 and 260 jobs, one round): the table
and the per-round lines it prints, with figures that are times a page can take."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.web.browser import needs_chromium

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
NUM = r"(\d+(?:\.\d+)?)"


@needs_chromium
@pytest.mark.slow
def test_tiny_run_prints_one_row_per_size(tmp_path):
    figures = tmp_path / "rounds.json"
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "web_render.py"), "--jobs", "20,260",
         "--rounds", "1", "--repeats", "2", "--json", str(figures)],
        capture_output=True, text=True, timeout=240, check=True).stdout
    assert out.startswith("load before: ")
    assert re.search(r"^20 jobs round 0: first \d+ ms, all \d+ ms, filter [\d.]+ ms, "
                     r"lag -?\d+ ms "
                     r"\(others -?\d+\.\d\d CPU, steal \d+\.\d\d, load \d+\.\d\)$", out, re.M), out
    header = ("| jobs | first rows ms | all rows ms | list read + render ms | list fetch ms "
              "(reads) | filter ms | sort ms | page ms | epoch lag ms | rounds | "
              "others CPU (max) | load (max) |")
    assert header in out
    op = rf"{NUM} \((\d+)\)"
    rows = {}
    # 20 jobs fit one page of 50 (no page to change) and one read; 260 take two reads
    for n, reads, page in ((20, 1, "-"), (260, 2, op)):
        row = re.search(rf"^\| {n} \| (\d+) \| (\d+) \| (\d+) \| (\d+) \({reads}\) \| "
                        rf"{op} \| {op} \| {page} \| (-?\d+) \| 1 \| -?\d+\.\d\d \| "
                        rf"\d+\.\d \|$", out, re.M)
        assert row, out
        rows[n] = [float(g) for g in row.groups()]
    for first, done, load, fetch, *ops, lag in rows.values():
        # the list is fetched, then rendered, before the whole list's render is stamped,
        # the first rows no later, all within the page's life (well under the bench's
        # own timeouts)
        assert 0 < fetch <= load <= done < 60_000 and 0 < first <= done
        for handler, frame in zip(ops[::2], ops[1::2]):
            # every op re-renders a page of rows (none is a no-op: > 0.05 ms), and the
            # frame comes after the handler
            assert 0.05 < handler <= frame + 1
        # an epoch is shown after it was written, within the wait_for deadline (20 s)
        assert 0 <= lag < 20_000
    records = json.loads(figures.read_text())
    assert [(r["jobs"], r["round"]) for r in records] == [(20, 0), (260, 0)]
    # 20 jobs come in one read, rendered once; 260 show their newest 200 first
    assert [r["first"] == r["all"] for r in records] == [True, False]
    assert records[1]["first"] < records[1]["all"]
    assert all(r["span"]["seconds"] > 0 and r["span"]["tree"] > 0 for r in records)


def test_bad_arguments_name_the_value():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "web_render.py"), "--jobs", "20,x"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--jobs must be comma-separated integers; received '20,x'" in out.stderr
