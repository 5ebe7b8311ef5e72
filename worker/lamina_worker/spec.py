"""From a job spec (validated by the API) to what the trainer needs.

The stored spec is parsed with the API's own schema
(:class:`lamina_service.jobspec.JobCreate`), so both sides read every field the same
way. Only allowlisted callbacks are built, with file names chosen here (never taken
from the spec); arrays come from storage by dataset id.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from lamina.models import data as data_utils
from lamina_service.jobspec import CompileConfig, JobCreate
from lamina_service.storage import WEIGHTS


class SpecError(ValueError):
    """The job spec cannot be run as given (a clear message for the job's error)."""


@dataclass
class Plan:
    """Everything the trainer is built from."""

    model_config: dict
    compile_config: dict
    train: tuple
    val: tuple | None
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int
    replicas: int
    initial_epoch: int
    callbacks: list
    initial_weights_id: str | None = None


def job_seed(job_id: str, seed: int | None) -> int:
    """The spec's seed, else one derived from the job id (the same on every attempt)."""
    if seed is not None:
        return int(seed)
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big")


def parse(spec: dict) -> JobCreate:
    """The stored spec as the API's :class:`JobCreate` (``SpecError`` naming the field)."""
    try:
        return JobCreate.model_validate(spec)
    except ValidationError as exc:
        raise SpecError(f"the job spec does not match the job schema: {_problems(exc)}") \
            from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                     for e in exc.errors()[:5])


def compile_config(spec: dict | JobCreate) -> dict:
    """Keyword arguments of ``model.compile`` from the spec's ``compile`` section."""
    if isinstance(spec, JobCreate):
        config = spec.compile
    else:
        try:
            config = CompileConfig.model_validate(spec.get("compile") or {})
        except ValidationError as exc:
            raise SpecError(f"compile: {_problems(exc)}") from None
    optimizer = config.optimizer
    if not isinstance(optimizer, str):
        optimizer = optimizer.model_dump(mode="json")
    out = {"optimizer": optimizer, "loss": config.loss, "metrics": config.metrics or None}
    if config.loss_weights is not None:
        out["loss_weights"] = config.loss_weights
    return out


def arrays(data: dict[str, np.ndarray], what: str):
    """``(x, y)`` from a stored dataset: ``x``/``y`` or ``x_<input>``/``y_<output>`` dicts."""
    def pick(prefix: str):
        if prefix in data:
            return data[prefix]
        named = {k[len(prefix) + 1:]: v for k, v in sorted(data.items())
                 if k.startswith(prefix + "_")}
        if not named:
            raise SpecError(f"the {what} dataset has no {prefix!r} array; it holds "
                            f"{sorted(data)}")
        return named
    return pick("x"), pick("y")


def _float_inputs(x):
    if isinstance(x, dict):
        return {k: _float_inputs(v) for k, v in x.items()}
    return x.astype(np.float32) if x.dtype.kind == "f" and x.dtype != np.float32 else x


def plan(job_id: str, spec: dict, datasets: list[dict], max_replicas: int | None) -> Plan:
    """Resolve data, validation, class weights, seed and replica count for a job.

    Args:
        job_id: the job id (seeds a job without a seed).
        spec: the job spec.
        datasets: the loaded training dataset, then the validation one if any.
        max_replicas: this worker's cap on replicas (None: as the job asks).
    """
    job = parse(spec)
    fit = job.fit
    x, y = arrays(datasets[0], "training")
    x = _float_inputs(x)
    sample_weight = None
    n = data_utils.num_samples(x, y)
    data_utils.check_finite(x, "x")
    data_utils.check_finite(y, "y")
    val = None
    if len(datasets) > 1:
        vx, vy = arrays(datasets[1], "validation")
        val = (_float_inputs(vx), vy, None)
    elif fit.validation_split:
        (x, y, sample_weight), val = data_utils.train_validation_split(
            (x, y, None), fit.validation_split)
        n = data_utils.num_samples(x, y)
    if fit.class_weight:
        sample_weight = data_utils.class_weight_to_sample_weight(y, fit.class_weight)
    replicas = job.replicas
    if max_replicas:
        replicas = min(replicas, max_replicas)
    return Plan(
        model_config=job.model, compile_config=compile_config(job),
        train=(x, y, sample_weight), val=val, epochs=fit.epochs,
        batch_size=fit.batch_size, shuffle=fit.shuffle,
        seed=job_seed(job_id, fit.seed),
        replicas=max(1, min(replicas, n)),
        initial_epoch=fit.initial_epoch,
        callbacks=[c.model_dump(mode="json") for c in job.callbacks],
        initial_weights_id=fit.initial_weights_id,
    )


def initial_weights(data: dict[str, np.ndarray]) -> np.ndarray:
    """The flat float32 vector of a weights upload (its one array ``weights``: (1, P))."""
    vector = data.get(WEIGHTS)
    if vector is None:
        raise SpecError(f"fit.initial_weights_id must name a weights upload (one array "
                        f"{WEIGHTS!r}); it holds {sorted(data)}")
    return np.ascontiguousarray(vector[0], dtype=np.float32)


def assign_initial_weights(model, vector: np.ndarray) -> None:
    """Set ``model.weights`` (in order) from a flat vector made by the SDK's client.

    Raises:
        SpecError: the vector's length is not the model's weight count.
    """
    shapes = [tuple(w.shape) for w in model.weights]
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes]
    if sum(sizes) != vector.size:
        raise SpecError(f"the initial weights hold {vector.size} values; the model has "
                        f"{sum(sizes)} in {len(sizes)} weights")
    arrays, at = [], 0
    for shape, size in zip(shapes, sizes):
        arrays.append(vector[at:at + size].reshape(shape))
        at += size
    model.set_weights(arrays)


def _schedule(config: dict):
    kind = config["type"]
    if kind == "exponential":
        return lambda epoch, lr=None: config["initial_learning_rate"] * config["decay_rate"] ** (
            epoch / config.get("decay_epochs", 1))
    if kind == "step":
        return lambda epoch, lr=None: config["initial_learning_rate"] * config["drop"] ** (
            math.floor(epoch / config["every"]))
    if kind == "piecewise":
        def piecewise(epoch, lr=None):
            index = sum(1 for b in config["boundaries"] if epoch >= b)
            return config["values"][index]
        return piecewise
    raise SpecError(f"unknown schedule type {kind!r}")


def build_callbacks(spec: dict, folder: Path) -> list:
    """Lamina callbacks from the spec's allowlisted ``callbacks`` list.

    Files (ModelCheckpoint, CSVLogger) go to ``folder`` under fixed names.

    Raises:
        SpecError: a callback that is not on the allowlist.
    """
    from lamina import callbacks as cbs

    out: list[Any] = []
    for entry in spec.get("callbacks") or []:
        name, config = entry.get("class_name"), dict(entry.get("config") or {})
        if name == "EarlyStopping":
            out.append(cbs.EarlyStopping(**config))
        elif name == "ReduceLROnPlateau":
            out.append(cbs.ReduceLROnPlateau(**config))
        elif name == "ModelCheckpoint":
            weights_only = bool(config.get("save_weights_only"))
            filename = "model_checkpoint" + (".weights.h5" if weights_only else ".keras")
            out.append(cbs.ModelCheckpoint(str(Path(folder) / filename), **config))
        elif name == "TerminateOnNaN":
            out.append(cbs.TerminateOnNaN())
        elif name == "CSVLogger":
            out.append(cbs.CSVLogger(str(Path(folder) / "training_log.csv"), **config))
        elif name == "LearningRateScheduler":
            out.append(cbs.LearningRateScheduler(_schedule(config["schedule"]),
                                                 verbose=config.get("verbose", 0)))
        else:
            raise SpecError(f"callback {str(name)[:80]!r} is not allowed")
    return out
