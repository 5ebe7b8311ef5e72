"""Redis keys are built and read only inside ``lamina_service.queue`` (style rule 6)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUEUE = ROOT / "services/lamina_service/queue"


def _imports_of_keys(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if node.module == "lamina_service.queue.keys" or (
                    node.module == "lamina_service.queue" and "keys" in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif isinstance(node, ast.Import):
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for alias in node.names
                      if alias.name == "lamina_service.queue.keys"]
    return found


def test_no_module_outside_the_queue_package_builds_redis_keys():
    sources = [p for folder in ("services", "worker", "sdk") for p in (ROOT / folder).rglob("*.py")
               if QUEUE not in p.parents]
    assert len(sources) > 50
    offenders = [hit for path in sources for hit in _imports_of_keys(path)]
    assert not offenders, f"Redis keys used outside lamina_service.queue: {offenders}"
