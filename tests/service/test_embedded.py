"""The embedded stack of ``lamina up``: ready means *its* children answer, not whatever
holds their port (a server that took the port after ``free_port`` picked it)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lamina_service.embedded import (
    RAY_HEAD_STOP_SECONDS,
    Child,
    EmbeddedStack,
    StackError,
    owns_port,
    wait_for_port,
)
from tests.sessions import session_members


class _AlwaysReady(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def foreign_server():
    """Another program's HTTP server on a loopback port, answering 200 to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _child(tmp_path, code: str) -> Child:
    """``code`` in a Python child in its own session, as the stack starts its parts."""
    log_path = tmp_path / "child.log"
    with open(log_path, "ab") as out:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Child("ray-head", process, log_path)


def _stop(child: Child) -> None:
    child.signal(signal.SIGKILL)
    child.process.wait()


def test_an_api_port_held_by_another_server_is_not_taken_for_ready(foreign_server, redis_url,
                                                                    tmp_path):
    """The foreign server answers /readyz 200 at once while our API exits on EADDRINUSE:
    start-up fails naming the API instead of handing out the other server's URL."""
    port = foreign_server.server_address[1]
    stack = EmbeddedStack(workers=0, port=port, redis_url=redis_url, root=str(tmp_path))
    with pytest.raises(StackError, match=r"api exited with code \d+:[\s\S]*address already in use"):
        stack.start(timeout=60)
    assert not stack.children  # stopped


def test_a_port_held_by_another_process_is_not_the_childs(tmp_path):
    """The Ray head's wait: its child is alive but not listening yet (``ray start``
    before its GCS binds) while another process accepts on the port."""
    foreign = socket.create_server(("127.0.0.1", 0))
    port = foreign.getsockname()[1]
    child = _child(tmp_path, "import time; time.sleep(60)")
    try:
        assert not owns_port(child, port)
        start = time.monotonic()
        with pytest.raises(StackError, match=f"nothing of ray-head listened on port {port}"):
            wait_for_port(port, 1.5, child)
        assert time.monotonic() - start >= 1.5
    finally:
        _stop(child)
        foreign.close()


def test_a_port_listened_on_by_the_childs_own_process_is_ready(tmp_path):
    """As ``ray start``'s GCS server: a grandchild in the child's session listens on
    ``[::]`` (the IPv6 table); once it is gone, the port is nobody's."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    grandchild = (f"import socket, time; server = socket.create_server(('::', {port}), "
                  f"family=socket.AF_INET6, dualstack_ipv6=True); time.sleep(60)")
    child = _child(tmp_path, f"import subprocess, sys; "
                             f"subprocess.run([sys.executable, '-c', {grandchild!r}])")
    try:
        wait_for_port(port, 60, child)
        assert owns_port(child, port)
        outsider = _child(tmp_path, "import time; time.sleep(60)")
        assert not owns_port(outsider, port)  # another session does not own it
        _stop(outsider)
    finally:
        _stop(child)  # its session: the grandchild too
    deadline = time.monotonic() + 30
    while owns_port(child, port):
        assert time.monotonic() < deadline, f"port {port} still listened on after the kill"
        time.sleep(0.1)


def test_a_ray_head_stopped_while_it_starts_stops_within_its_bound(tmp_path):
    """Stopped as soon as its GCS port opens, while ``ray start`` still waits for its
    node to register. SIGTERM to the head's whole session took the GCS away from under
    that wait, and two stops of three then took 30-40 s. The head now stops its own
    session (most stops well under a second), and one that does not exit is killed
    after ``RAY_HEAD_STOP_SECONDS``; nothing of its session is left."""
    for attempt in range(3):
        stack = EmbeddedStack(workers=1, root=str(tmp_path / f"stack-{attempt}"))
        stack._start_ray(120)
        head = next(c for c in stack.children if c.name == "ray-head")
        started = time.monotonic()
        stack.stop()
        took = time.monotonic() - started
        assert took < RAY_HEAD_STOP_SECONDS + 5, \
            f"stop {attempt + 1} took {took:.1f}s:\n{head.tail()}"
        deadline = time.monotonic() + 5  # Ray's idle workers go with their raylet
        while session_members(head.process.pid):
            assert time.monotonic() < deadline, session_members(head.process.pid)
            time.sleep(0.1)
