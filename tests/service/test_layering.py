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


def test_job_states_and_event_types_come_from_the_protocol():
    """The Lua scripts, the queue's enum and the web page use the protocol's words."""
    import re

    from lamina.client.protocol import EVENT_TYPES, JOB_STATUSES, TERMINAL_STATUSES
    from lamina_service.queue import scripts
    from lamina_service.queue.consumer import EVENT_TYPES as CONSUMER_EVENTS
    from lamina_service.queue.models import TERMINAL, JobStatus

    assert tuple(s.value for s in JobStatus) == JOB_STATUSES
    assert {s.value for s in TERMINAL} == TERMINAL_STATUSES
    assert CONSUMER_EVENTS == frozenset(EVENT_TYPES)
    lua = "\n".join(v for k, v in vars(scripts).items() if k.isupper() and isinstance(v, str))
    used = set(re.findall(r"set_status\(\w+, '(\w+)'\)", lua))
    used |= set(re.findall(r"'status'\) [=~]= '(\w+)'", lua))
    assert len(used) >= 4 and used <= set(JOB_STATUSES), used - set(JOB_STATUSES)
    web = ROOT / "services/lamina_service/web"
    terminal = re.search(r"TERMINAL = new Set\(\[([^\]]*)\]\)", (web / "core.js").read_text())
    assert set(re.findall(r'"(\w+)"', terminal.group(1))) == TERMINAL_STATUSES
    order = re.search(r"ORDER = \{([^}]*)\}", (web / "jobs.js").read_text())
    assert set(re.findall(r"(\w+):", order.group(1))) == set(JOB_STATUSES)
