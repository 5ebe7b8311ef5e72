"""Render ``docs/compatibility.md`` from the surface fixture and ``lamina._compat``."""

from __future__ import annotations

import json
import pathlib
import sys

from lamina._compat import render_markdown, surface_report

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "keras_surface" / "keras-3.15.1.json"
DOC = ROOT / "docs" / "compatibility.md"


def render() -> str:
    version = json.loads(FIXTURE.read_text())["keras_version"]
    return render_markdown(surface_report(FIXTURE), version)


if __name__ == "__main__":
    if "--missing" in sys.argv:
        for module, r in surface_report(FIXTURE)["modules"].items():
            if r["missing"] or r["partial"]:
                print(f"{module}: missing {r['missing']}\n  params {r['partial']}")
    else:
        DOC.write_text(render())
        print(DOC)
