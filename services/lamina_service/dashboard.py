"""What the web dashboard reads beyond ``/v1/jobs``: one row per job, and a job's summary.

The jobs view needs, for each job, the model class, a parameter count, replicas,
epochs planned and the best validation value so far; the job view needs the model
summary (layers, output shapes, parameters) and the compile/fit settings. Both are
derived here from the stored job records (:class:`~lamina_service.queue.Producer`),
so the page never parses a Keras config itself.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from lamina_service.config import Limits
from lamina_service.errors import NotFound, ServiceError
from lamina_service.queue import JobRecord, JobStatus, Producer
from lamina_service.queue.reads import specs_and_histories
from lamina_service.validation import estimate_cost

#: Substrings of metric names where larger is better (as Keras's ``mode="auto"``).
_MAX_METRICS = ("acc", "auc", "precision", "recall", "f1", "iou", "fmeasure")
_SUMMARY_CACHE_SIZE = 256
_ROW_CACHE_SIZE = 20_000


def metric_mode(name: str) -> str:
    """``"max"`` for accuracy-like metric names, else ``"min"`` (losses, errors)."""
    lowered = name.lower()
    return "max" if any(part in lowered for part in _MAX_METRICS) else "min"


def monitored_metric(spec: dict[str, Any], history: dict[str, list]) -> str | None:
    """The metric the job is judged by: its EarlyStopping/ModelCheckpoint monitor when
    it has one, else ``val_loss``, else ``loss`` (None before any epoch)."""
    for callback in spec.get("callbacks") or []:
        if callback.get("class_name") in ("EarlyStopping", "ModelCheckpoint"):
            monitor = (callback.get("config") or {}).get("monitor", "val_loss")
            if monitor in history:
                return monitor
    for name in ("val_loss", "loss"):
        if name in history:
            return name
    return None


def best_value(spec: dict[str, Any], history: dict[str, list]) -> dict[str, Any] | None:
    """``{"metric", "value", "epoch", "mode"}`` of the best epoch of the monitored metric."""
    metric = monitored_metric(spec, history)
    if metric is None:
        return None
    mode = metric_mode(metric)
    points = [(v, i) for i, v in enumerate(history[metric]) if v is not None]
    if not points:
        return None
    value, epoch = (max if mode == "max" else min)(points, key=lambda p: p[0])
    return {"metric": metric, "value": value, "epoch": epoch, "mode": mode}


def _params(spec: dict[str, Any], limits: Limits) -> int | None:
    model = spec.get("model")
    if not isinstance(model, dict):
        return None
    try:
        return estimate_cost(model, limits).params
    except ServiceError:
        return None


def spec_facts(spec: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """What a row shows from a job's spec (which never changes): model class, a
    parameter count (the pre-check's, without building), epochs, replicas, monitors."""
    return {"model_class": (spec.get("model") or {}).get("class_name"),
            "params": _params(spec, limits), "epochs": (spec.get("fit") or {}).get("epochs"),
            "replicas": spec.get("replicas", 1),
            "callbacks": [{"class_name": c.get("class_name"),
                           "config": {"monitor": (c.get("config") or {}).get("monitor",
                                                                                "val_loss")}}
                          for c in spec.get("callbacks") or []
                          if c.get("class_name") in ("EarlyStopping", "ModelCheckpoint")]}


def job_row(record: JobRecord, facts: dict[str, Any],
            history: dict[str, list] | None = None) -> dict[str, Any]:
    """One row of the jobs view (see ``JobRow`` in the dashboard routes); ``history``
    stands for the record's own (a listing's records come without one)."""
    history = record.history if history is None else history
    return {
        "id": record.id, "name": record.name, "status": record.status.value,
        "priority": record.priority, "attempts": record.attempts, "epoch": record.epoch,
        "epochs": facts["epochs"], "replicas": facts["replicas"],
        "model_class": facts["model_class"], "params": facts["params"],
        "best": best_value(facts, history), "worker": record.worker,
        "cancel_requested": record.cancel_requested,
        "has_model": record.artifact_id is not None, "error": record.error,
        "submitted_at": record.submitted_at, "started_at": record.started_at,
        "finished_at": record.finished_at,
    }


def _history(raw: dict[str, str]) -> dict[str, list]:
    """A history hash (epoch -> JSON logs) as ``History.history`` (metric -> per epoch)."""
    curves: dict[str, list] = {}
    for position, (_, logs) in enumerate(sorted((int(k), json.loads(v))
                                                for k, v in raw.items())):
        for metric in logs:
            curves.setdefault(metric, [None] * position)
        for metric, values in curves.items():
            values.append(logs.get(metric))
    return curves


def job_rows(producer: Producer, limits: Limits, tenant: str, status: JobStatus | None,
             offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None, int]:
    """A page of ``tenant``'s jobs as rows, newest first, the next offset (or None) and
    how many jobs the listing holds (so a reader can ask for the other pages at once).

    The listing (:meth:`Producer.list_jobs`) carries no spec and no history: the specs
    not yet seen and the histories of the jobs that finished an epoch are read in one
    round trip. Specs never change and neither do finished jobs' rows: both are kept
    in memory, so a page the dashboard polls re-reads only the jobs still moving.
    """
    page = producer.list_jobs(tenant, status, offset, limit)
    rows = [_rows.get(f"{r.id}@{r.finished_at}") if r.finished_at else None
            for r in page.items]
    todo = [r for r, row in zip(page.items, rows) if row is None]
    need_spec = [r.id for r in todo if _facts.get(r.id) is None]
    need_history = [r.id for r in todo if r.epoch is not None]
    specs, histories = specs_and_histories(producer.client, need_spec, need_history)
    for job_id, spec in zip(need_spec, specs):
        _facts.put(job_id, spec_facts(json.loads(spec or "{}"), limits))
    history = dict(zip(need_history, histories))
    for index, record in enumerate(page.items):
        if rows[index] is not None:
            continue
        rows[index] = job_row(record, _facts.get(record.id) or spec_facts({}, limits),
                              _history(history.get(record.id, {})))
        if record.status.terminal:
            _rows.put(f"{record.id}@{record.finished_at}", rows[index])
    return rows, page.next_offset, page.total


class _SummaryCache:
    """Values that never change for a key (a job's model summary, a finished job's row),
    least recently used out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_summaries = _SummaryCache(_SUMMARY_CACHE_SIZE)
_rows = _SummaryCache(_ROW_CACHE_SIZE)
_facts = _SummaryCache(_ROW_CACHE_SIZE)


def _shape(layer) -> list | None:
    try:
        return [None if d is None else int(d) for d in layer.output.shape]
    except (AttributeError, ValueError, TypeError):
        return None


def model_summary(model_config: dict[str, Any]) -> dict[str, Any]:
    """Layers (name, class, output shape, parameters) of a model config, built by Lamina's
    safe deserialiser; without Lamina, or when the build fails, the configured layers
    with unknown shapes and ``built: False``."""
    layers = (model_config.get("config") or {}).get("layers") or []
    try:
        from lamina.models import model_from_config

        model = model_from_config(model_config, safe_mode=True)
    except Exception:  # noqa: BLE001 - the page then shows the configured layers only
        return {"built": False, "params": None, "layers": [
            {"name": (layer.get("config") or {}).get("name"),
             "class_name": layer.get("class_name"), "output_shape": None, "params": None}
            for layer in layers if isinstance(layer, dict)]}
    return {"built": True, "params": int(model.count_params()), "layers": [
        {"name": layer.name, "class_name": type(layer).__name__,
         "output_shape": _shape(layer), "params": int(layer.count_params())}
        for layer in model.layers]}


def job_summary(producer: Producer, limits: Limits, tenant: str, job_id: str) -> dict[str, Any]:
    """Everything the job view shows besides the event stream.

    Raises:
        NotFound: no such job for this tenant.
    """
    record = producer.get(tenant, job_id)
    if record is None:
        raise NotFound(f"no such job: {job_id!r}", field="job_id")
    spec = record.spec or {}
    summary = _summaries.get(job_id)
    if summary is None:
        summary = model_summary(spec.get("model") or {})
        _summaries.put(job_id, summary)
    return {"row": job_row(record, spec_facts(spec, limits)), "history": record.history,
            "model": summary, "compile": spec.get("compile") or {},
            "fit": spec.get("fit") or {}, "callbacks": spec.get("callbacks") or [],
            "dataset_id": record.dataset_id, "final_logs": record.final_logs}
