"""keep_freed_memory: glibc malloc tuning, once per process, with an opt-out."""

from __future__ import annotations

import os
import subprocess
import sys

from lamina.backend.memory import keep_freed_memory


def _run(env_value):
    code = ("from lamina.backend.memory import keep_freed_memory as k; "
            "print(k(), k())")
    env = {"PATH": "/usr/bin:/bin", "LAMINA_KEEP_FREED_MEMORY": env_value,
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # lamina may not be installed
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True).stdout.split()


def test_is_idempotent():
    assert keep_freed_memory() == keep_freed_memory()


def test_applies_on_linux_glibc_and_can_be_turned_off():
    on = _run("1")
    assert on[0] == on[1]
    if sys.platform.startswith("linux"):
        assert on == ["True", "True"]
    assert _run("0") == ["False", "False"]
