"""The commands of README.md and docs/operations.md, run for real.

``lamina up`` runs the local stack in a subprocess; the README's example trains against
it; every ``lamina`` command in the docs' command block runs against the job it made;
SIGINT (Ctrl-C) stops the stack and all its children. ``lamina demo`` (what ``make
demo`` runs) has its own test.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Ray takes 20-30 s to start here; a stack plus a training job needs more than 300 s
# on a slow CI machine.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def lamina(*args: str, url: str, check: bool = True, timeout: float = 120, **extra) -> str:
    env = dict(os.environ, LAMINA_URL=url, **extra)
    result = subprocess.run([sys.executable, "-m", "lamina.cli", *args], env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def stack_up(tmp_path):
    """``lamina up`` in a subprocess, stopped with SIGINT like Ctrl-C."""
    from lamina_service.embedded import wait_ready
    from lamina_service.redis_server import free_port

    port = free_port()
    log = open(tmp_path / "up.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "lamina.cli", "up", "--workers", "1", "--port", str(port),
         "--root", str(tmp_path / "root")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 240)
        yield process, url, tmp_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        log.close()


def test_readme_example_and_every_documented_command(stack_up):
    process, url, tmp = stack_up
    # README: the 20-line example, pointed at this stack.
    (example,) = [b for b in code_blocks(ROOT / "README.md", "python") if "Client" in b]
    assert len(example.strip().splitlines()) <= 20
    script = tmp / "readme_example.py"
    script.write_text(example.replace('"http://127.0.0.1:8000"', repr(url)))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=240, cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Epoch 3/3") == 2  # local fit, then the remote job's bar

    job_id = re.findall(r"j_[0-9a-f]{24}", lamina("jobs", url=url))[0]
    commands = [line.split("#")[0].strip()
                for block in code_blocks(ROOT / "docs/operations.md", "sh")
                for line in block.splitlines() if line.startswith("lamina ")]
    commands += [line.strip() for line in code_blocks(ROOT / "README.md", "sh")[0].splitlines()
                 if line.startswith("lamina ")]
    ran = set()
    for command in commands:
        args = shlex.split(command.replace("j_0123456789abcdef01234567", job_id))[1:]
        if args[0] in ("up", "api", "worker"):
            continue  # long-running processes: `up` is this test's stack, `api`/`worker` its parts
        if args[0] == "download":
            args[args.index("-o") + 1] = str(tmp / "model.keras")
        # warm's kernel library goes to this test's folder: later tests run without one
        extra = {"LAMINA_AOT_DIR": str(tmp / "kernels")} if args[0] == "warm" else {}
        out = lamina(*args, url=url, timeout=600, **extra)
        ran.add(args[0])
        if args[0] == "warm":
            assert "ahead-of-time library" in out and str(tmp / "kernels") in out, out
        if args[0] == "status":
            assert "status    succeeded" in out
        if args[0] == "logs":
            assert "Epoch 3/3" in out and f"job {job_id} succeeded" in out
        if args[0] == "cancel":
            assert f"job {job_id}: succeeded" in out  # a finished job stays as it is
    assert ran >= {"jobs", "status", "logs", "cancel", "download"}
    import lamina as keras

    assert keras.models.load_model(tmp / "model.keras").compiled
    assert "Epoch 1:" in lamina("logs", job_id, url=url)

    # Errors are one line on stderr with exit code 1.
    result = subprocess.run([sys.executable, "-m", "lamina.cli", "--url", url, "status",
                             "j_" + "f" * 24], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("error: HTTP 404 not_found")

    # Ctrl-C stops the stack and every child process.
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                              text=True).stdout.split()
    assert len(children) >= 3  # ray head, api, worker (redis-server too)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 0
    deadline = time.monotonic() + 30  # reaped by now: the stack waits for each child
    while (running := [pid for pid in children if running_pid(pid)]) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running, running
    assert "stopped." in (tmp / "up.log").read_text()


def running_pid(pid: str) -> bool:
    """True while ``pid`` runs (not a zombie); a process that exits and is reaped
    between two reads of /proc is not running."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.lower()


def test_lamina_demo_trains_remotely_and_prints_the_accuracy():
    """What `make demo` runs: stack up, 2 replicas, live progress, accuracy, stack down."""
    result = subprocess.run([sys.executable, "-m", "lamina.cli", "demo"], capture_output=True,
                            text=True, timeout=280)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "Epoch 1/10" in out and "2 replicas" in out
    accuracy = float(re.search(r"test accuracy of the downloaded model: ([0-9.]+)", out)[1])
    assert accuracy >= 0.8
    assert out.rstrip().endswith("stack stopped.")
