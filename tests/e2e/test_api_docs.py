"""Every curl command of docs/api.md, run with curl against the real API over HTTP.

Placeholders are replaced with real values: ``$URL``/``key1`` with the test server, ``d_...``
with an uploaded dataset, ``j_...`` with a job trained by QueueTrainer (the real queue
Consumer), ``epoch-0003.weights.h5`` with a checkpoint file of that job.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.sdk.client.conftest import API_KEY, LiveServer, QueueTrainer

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")]
ROOT = Path(__file__).resolve().parents[2]


def run(command: str, cwd: Path) -> str:
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}"], cwd=cwd,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout


def test_every_curl_command_in_api_md(redis_url, tmp_path):
    from lamina_service.config import Settings
    from lamina_service.storage import Storage

    settings = Settings(redis_url=redis_url, storage_root=str(tmp_path / "storage"),
                        api_keys={API_KEY: "docs"}, sse_poll_ms=100)
    server = LiveServer(settings).start()
    try:
        blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "docs/api.md").read_text(), re.S)
        export, blocks = blocks[0], blocks[1:]
        assert export.startswith("export URL=")
        env = (f"export URL={server.url} AUTH='Authorization: Bearer {API_KEY}'\n")
        x = np.arange(48, dtype="float32").reshape(16, 3) / 48
        np.savez(tmp_path / "train.npz", x=x, y=x.sum(axis=1, keepdims=True))
        ids: dict[str, str] = {}
        trainer = None
        for block in blocks:
            if "/v1/datasets/d_" in block:
                block = block.replace("d_...", ids["dataset"])
            if "jobs/j_" in block:
                block = re.sub(r"j_(0123456789abcdef01234567|\.\.\.)", ids["job"], block)
            if '"dataset_id": "d_..."' in block:
                block = block.replace('"d_..."', json.dumps(ids["dataset"]))
                trainer = QueueTrainer(settings).start()
            out = run(env + block, tmp_path)
            if "--data-binary @train.npz" in block:
                ids["dataset"] = json.loads(out)["id"]
            if "-d '{" in block:
                ids["job"] = json.loads(out)["id"]
                trainer.join()
                checkpoints = Storage(settings.storage_root, 2**30, 2**30).checkpoint_dir(
                    ids["job"])
                (checkpoints / "epoch-0003.weights.h5").write_bytes(b"checkpoint")
            if "/events" in block:
                assert "event: epoch" in out and '"status": "succeeded"' in out
            if "/metrics" in block:
                assert "lamina_http_requests_total" in out
            if "/v1/dashboard/jobs" in block:
                assert out.count(ids["job"]) >= 2 and '"history"' in out, out[:300]
        assert (tmp_path / "model.keras").stat().st_size > 0
        assert (tmp_path / "ckpt.h5").read_bytes() == b"checkpoint"
    finally:
        server.stop()
