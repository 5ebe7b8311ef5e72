"""RemoteMonitor posts each epoch's logs to a real local HTTP server."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from lamina.callbacks import RemoteMonitor


@pytest.fixture
def server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", received
    httpd.shutdown()
    httpd.server_close()


def test_posts_form_field_per_epoch(server, model, data):
    root, received = server
    model.fit(*data, epochs=2, verbose=0, callbacks=[RemoteMonitor(root=root, path="/ep/")])
    assert [r[0] for r in received] == ["/ep/", "/ep/"]
    payload = json.loads(urllib.parse.parse_qs(received[1][2])["data"][0])
    assert payload["epoch"] == 1 and isinstance(payload["loss"], float)


def test_posts_json_with_headers(server):
    root, received = server
    monitor = RemoteMonitor(root=root, send_as_json=True, headers={"X-Run": "7"})
    monitor.on_epoch_end(3, {"loss": 0.5})
    path, headers, body = received[0]
    assert path == "/publish/epoch/end/" and headers["X-Run"] == "7"
    assert json.loads(body) == {"epoch": 3, "loss": 0.5}


def test_unreachable_server_warns():
    monitor = RemoteMonitor(root="http://127.0.0.1:9")
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor"):
        monitor.on_epoch_end(0, {"loss": 1.0})
