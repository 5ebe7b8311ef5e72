"""How much of Keras's public surface Lamina offers, measured against a recorded fixture.

The fixture (``tests/fixtures/keras_surface/keras-<version>.json``, written by
``scripts/keras_surface.py`` under real Keras) lists every public name of every Keras
module with its kind and parameter names. :func:`surface_report` looks each name up in
Lamina with ``getattr`` (so lazy exports count) and checks that Lamina's signature takes
all of Keras's parameter names. :data:`EXCLUSIONS` is the one list of names Lamina leaves
out on purpose; ``docs/compatibility.md`` is rendered from it and from the report
(``python scripts/compat_doc.py``), and a test keeps the page current.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pathlib

# The modules each issue is measured on ("Drop-in Keras I": compute; "II": workflow).
GROUPS = {
    "compute": ("layers", "ops", "ops.numpy", "ops.nn", "ops.linalg", "ops.image", "random",
                "tree", "activations", "initializers", "regularizers", "constraints",
                "backend", "applications", "applications.*"),
    "workflow": ("keras", "utils", "preprocessing", "preprocessing.*", "datasets",
                 "datasets.*", "metrics", "losses", "optimizers", "optimizers.schedules",
                 "callbacks", "saving", "models", "wrappers", "config"),
}

_JAX = "a JAX-only wrapper: Lamina computes on numpy, there is no JAX function to wrap"
_TORCH = "a PyTorch-only wrapper: Lamina never imports torch"
_TF = "a TensorFlow-only wrapper: Lamina never imports tensorflow"
_DIST = "TPU/multi-device distribution of Keras's JAX backend; Lamina distributes through " \
        "its service (lamina.Client(...).fit(..., replicas=N))"

# (module, name) -> why Lamina does not offer it. Exclusions count as missing.
EXCLUSIONS: dict[tuple[str, str], str] = {
    ("layers", "JaxLayer"): _JAX,
    ("layers", "FlaxLayer"): _JAX,
    ("layers", "TorchModuleWrapper"): _TORCH,
    ("layers", "TFSMLayer"): _TF,
    ("keras", "distribution"): _DIST,
    ("keras", "RematScope"): "rematerialisation of JAX/TF graphs; Lamina keeps activations "
                             "of the numpy tape",
    ("keras", "remat"): "rematerialisation of JAX/TF graphs; Lamina keeps activations of "
                        "the numpy tape",
    ("keras", "export"): "ExportArchive writes TensorFlow SavedModel, ONNX or OpenVINO "
                         "artifacts through those frameworks; Lamina's deployable artifact is "
                         "the .keras file (served by the training service's API)",
    ("callbacks", "OrbaxCheckpoint"): "checkpoints through Orbax, JAX's checkpointing "
                                      "library; use ModelCheckpoint or BackupAndRestore "
                                      "(HDF5, the same files Keras writes)",
}

# What Lamina does differently from Keras on purpose (rendered into the same page).
DIFFERENCES: tuple[tuple[str, str], ...] = (
    ("Layers or FeatureSpace called inside `tf.data.Dataset.map`",
     "refused with a TypeError naming the call: tf.data traces the function into a "
     "TensorFlow graph and Lamina computes eagerly on numpy, never importing tensorflow. "
     "Apply preprocessing eagerly (Lamina datasets chain `map`/`batch`/`take` like "
     "tf.data) or inside the model; `fit`, `predict`, `evaluate` and `adapt` take "
     "tf.data datasets as they are."),
    ("Mixed precision (`mixed_float16`, `mixed_bfloat16`)",
     "accepted globally and per layer; computes and stores in float32 (numpy has no "
     "bfloat16 and float16 GEMMs on a CPU are slower and less exact)."),
    ("`stateful=True` recurrent layers",
     "refused; carry states with `return_state` and `initial_state`."),
    ("`GPTQConfig`, `AWQConfig`",
     "not offered: they quantize through `Model.quantize` calibration passes Lamina "
     "does not implement."),
    ("Bounding boxes through RandomCrop, RandomRotation, RandomPerspective, RandAugment, "
     "MixUp",
     "boxes follow the pixels where Keras 3.15.1 does not (its RandomCrop swaps offsets, "
     "RandomRotation treats every format as xyxy, RandomPerspective returns xyxy, "
     "RandAugment moves boxes once per distinct pick); MixUp's box labels stay next to "
     "their boxes, (B, 2N)."),
)


def _lamina_module(path: str):
    dotted = "lamina" if path == "keras" else f"lamina.{path}"
    obj = importlib.import_module("lamina")
    if dotted == "lamina":
        return obj
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            try:
                obj = importlib.import_module(dotted)
            except ImportError:
                return None
            break
    return obj


def _params(obj) -> set[str] | None:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return {p.name for p in sig.parameters.values()}


def _in_group(module: str, patterns) -> bool:
    return any(module == p or (p.endswith(".*") and module.startswith(p[:-1]))
               for p in patterns)


def load_fixture(path) -> dict:
    return json.loads(pathlib.Path(path).read_text())["modules"]


def module_report(module: str, names: dict) -> dict:
    """Present and signature-complete names of one Keras module in Lamina."""
    lam = _lamina_module(module)
    present, full, missing, partial = 0, 0, [], []
    for name, entry in names.items():
        if (module, name) in EXCLUSIONS:
            missing.append(name)
            continue
        obj = getattr(lam, name, None) if lam is not None else None
        if obj is None:
            missing.append(name)
            continue
        present += 1
        want = set(entry.get("params") or ())
        have = _params(obj) if want else set()
        if have is None or want <= have:
            full += 1
        else:
            partial.append(f"{name}({', '.join(sorted(want - have))})")
    return {"total": len(names), "present": present, "full": full, "missing": missing,
            "partial": partial}


def surface_report(fixture_path) -> dict:
    """``{"modules": {module: report}, "groups": {group: totals}}`` for the fixture."""
    modules = {m: module_report(m, names) for m, names in load_fixture(fixture_path).items()}
    groups = {}
    for group, patterns in GROUPS.items():
        rows = [r for m, r in modules.items() if _in_group(m, patterns)]
        total = sum(r["total"] for r in rows)
        groups[group] = {"total": total,
                         "present": sum(r["present"] for r in rows),
                         "full": sum(r["full"] for r in rows)}
    return {"modules": modules, "groups": groups}


def render_markdown(report: dict, keras_version: str) -> str:
    """``docs/compatibility.md``: the per-module table and every deliberate exclusion."""
    lines = [
        "# Compatibility with Keras",
        "",
        f"Measured against Keras {keras_version}'s public names "
        "(`tests/fixtures/keras_surface/`, written by `scripts/keras_surface.py` under "
        "real Keras) by `tests/sdk/test_surface.py`. *Names* is the share of Keras's "
        "public names that Lamina has; *with parameters* the share whose signature also "
        "takes every one of Keras's parameter names. Exclusions count as missing. "
        "This page is generated: `python scripts/compat_doc.py`.",
        "",
        "| group | names | with parameters |",
        "|---|---|---|",
    ]
    for group, g in report["groups"].items():
        lines.append(f"| {group} ({', '.join(GROUPS[group])}) | "
                     f"{_pct(g['present'], g['total'])} | {_pct(g['full'], g['total'])} |")
    lines += ["", "| module | Keras names | names | with parameters |", "|---|---|---|---|"]
    for module, r in report["modules"].items():
        lines.append(f"| `{module}` | {r['total']} | {_pct(r['present'], r['total'])} | "
                     f"{_pct(r['full'], r['total'])} |")
    lines += ["", "## Deliberate exclusions", "", "| module | name | why |", "|---|---|---|"]
    for (module, name), why in sorted(EXCLUSIONS.items()):
        lines.append(f"| `{module}` | `{name}` | {why} |")
    lines += ["", "## Behaviour differences", "", "| what | in Lamina |", "|---|---|"]
    lines += [f"| {what} | {how} |" for what, how in DIFFERENCES]
    return "\n".join(lines) + "\n"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}% ({part}/{whole})" if whole else "n/a"
