"""Parse an uploaded dataset in a child process under resource limits.

The inspectors (:func:`lamina_service.storage.inspect_npz`, ``inspect_h5``) read only
headers, but they run zipfile's and libhdf5's parsers on bytes a client chose. A
hostile file can make a parser allocate without bound, loop, or crash the process
(a C library bug). So the API runs them in a fresh interpreter
(``python -m lamina_service.sandbox``) that first lowers its own limits with
``resource.setrlimit``: address space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``),
bytes it may write to files (``RLIMIT_FSIZE``: none) and open files; the parent also
kills it after a wall-clock timeout. Whatever happens in the child, the API answers
422 with the reason and keeps serving.

Protocol: the child prints one JSON line, ``{"arrays": ..., "samples": n}`` or
``{"error": message, "field": field}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from lamina_service.config import Limits
from lamina_service.errors import InvalidInput


def inspect_sandboxed(path: Path, fmt: str, limits: Limits) -> tuple[dict, int]:
    """Validate a stored upload in a limited child process.

    Args:
        path: the uploaded file.
        fmt: ``npz`` or ``h5`` (sniffed from its first bytes).
        limits: ``max_array_bytes`` and the ``parse_*`` limits.

    Returns:
        ``(arrays, samples)`` as the inspectors return them.

    Raises:
        InvalidInput: the dataset is refused, or its parsing broke a limit or crashed.
    """
    cmd = [sys.executable, "-m", "lamina_service.sandbox", str(path), fmt,
           str(limits.max_array_bytes), str(limits.parse_memory_bytes),
           str(limits.parse_cpu_seconds)]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HDF5_PLUGIN_PATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=limits.parse_timeout_seconds, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise InvalidInput(
            f"parsing the dataset took longer than parse_timeout_seconds="
            f"{limits.parse_timeout_seconds:g}; refused", field="dataset") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        reply = json.loads(lines[-1])
        if "error" in reply:
            raise InvalidInput(reply["error"], field=reply.get("field") or "dataset")
        return reply["arrays"], int(reply["samples"])
    raise InvalidInput(_reason(done.returncode, done.stderr, limits), field="dataset")


def _reason(code: int, stderr: str, limits: Limits) -> str:
    if code == -signal.SIGXCPU or code == -signal.SIGKILL:
        return (f"parsing the dataset used more than parse_cpu_seconds="
                f"{limits.parse_cpu_seconds} of CPU time; refused")
    if "MemoryError" in stderr or "std::bad_alloc" in stderr or "Cannot allocate" in stderr:
        return (f"parsing the dataset needed more than parse_memory_bytes="
                f"{limits.parse_memory_bytes} of memory; refused")
    if code < 0:
        return f"the dataset parser crashed (signal {-code}); refused"
    return f"the dataset parser failed (exit code {code}); refused"


def _limit(kind: int, value: int) -> None:
    import resource

    resource.setrlimit(kind, (value, value))


def main(argv: list[str]) -> int:
    """Child side: set the limits, then inspect (imports happen under the limits)."""
    import resource

    path, fmt, max_array_bytes, memory, cpu = argv
    _limit(resource.RLIMIT_AS, int(memory))
    _limit(resource.RLIMIT_CPU, int(cpu))
    _limit(resource.RLIMIT_FSIZE, 0)
    _limit(resource.RLIMIT_NOFILE, 32)
    _limit(resource.RLIMIT_CORE, 0)
    from lamina_service import storage

    inspect = storage.inspect_npz if fmt == "npz" else storage.inspect_h5
    try:
        arrays, samples = inspect(Path(path), int(max_array_bytes))
    except InvalidInput as exc:
        print(json.dumps({"error": exc.message, "field": exc.field}))
        return 0
    print(json.dumps({"arrays": arrays, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
