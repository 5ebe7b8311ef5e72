"""Record Keras's public API surface as a JSON fixture for ``tests/sdk/test_surface.py``.

Run in a side venv with real Keras (never a Lamina dependency)::

    python -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras==3.15.1 jax
    KERAS_BACKEND=jax /tmp/kvenv/bin/python scripts/keras_surface.py

It walks every public module under ``keras`` (the generated ``keras.api`` tree, never
``keras.src``) and writes, per module, each public name with its kind (``module``,
``class``, ``function``, ``constant``) and the names of its parameters (a class's
``__init__``; ``self``, ``*args`` and ``**kwargs`` left out).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pathlib
import types

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

OUT = (pathlib.Path(__file__).resolve().parent.parent
       / "tests" / "fixtures" / "keras_surface" / f"keras-{keras.__version__}.json")


def _parameters(obj) -> list[str] | None:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _kind(obj) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def _walk(module, path: str, out: dict) -> None:
    names = {}
    for name in sorted(dir(module)):
        if name.startswith("_") or name == "src":
            continue
        obj = getattr(module, name)
        kind = _kind(obj)
        entry = {"kind": kind}
        if kind in ("class", "function"):
            entry["params"] = _parameters(obj)
        names[name] = entry
        if kind == "module" and obj.__name__.startswith("keras.") \
                and ".src" not in obj.__name__:
            _walk(obj, f"{path}.{name}" if path else name, out)
    out[path or "keras"] = names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    modules: dict = {}
    _walk(keras, "", modules)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"keras_version": keras.__version__, "modules": dict(sorted(modules.items()))}
    args.out.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"{args.out}: {len(modules)} modules, "
          f"{sum(len(v) for v in modules.values())} names")


if __name__ == "__main__":
    main()
