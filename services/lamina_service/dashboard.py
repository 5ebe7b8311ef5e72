"""What the web dashboard reads beyond ``/v1/jobs``: one row per job, and a job's summary.

The jobs view needs, for each job, the model class, a parameter count, replicas,
epochs planned and the best validation value so far; the job view needs the model
summary (layers, output shapes, parameters) and the compile/fit settings. Both are
derived here from the stored job records (:class:`~lamina_service.queue.Producer`),
so the page never parses a Keras config itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from lamina_service.config import Limits
from lamina_service.errors import NotFound, ServiceError
from lamina_service.queue import JobRecord, JobStatus, Producer
from lamina_service.validation import estimate_cost

#: Substrings of metric names where larger is better (as Keras's ``mode="auto"``).
_MAX_METRICS = ("acc", "auc", "precision", "recall", "f1", "iou", "fmeasure")
_SUMMARY_CACHE_SIZE = 256


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


def job_row(record: JobRecord, limits: Limits) -> dict[str, Any]:
    """One row of the jobs view (see ``JobRow`` in the dashboard routes)."""
    spec = record.spec or {}
    fit = spec.get("fit") or {}
    model = spec.get("model") or {}
    return {
        "id": record.id, "name": record.name, "status": record.status.value,
        "priority": record.priority, "attempts": record.attempts, "epoch": record.epoch,
        "epochs": fit.get("epochs"), "replicas": spec.get("replicas", 1),
        "model_class": model.get("class_name"), "params": _params(spec, limits),
        "best": best_value(spec, record.history), "worker": record.worker,
        "cancel_requested": record.cancel_requested,
        "has_model": record.artifact_id is not None, "error": record.error,
        "submitted_at": record.submitted_at, "started_at": record.started_at,
        "finished_at": record.finished_at,
    }


def job_rows(producer: Producer, limits: Limits, tenant: str, status: JobStatus | None,
             offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """A page of ``tenant``'s jobs as rows, newest first, and the next offset (or None).

    Jobs that have finished an epoch are read again with their history (for the best
    value); the others have none yet.
    """
    page = producer.list_jobs(tenant, status, offset, limit)
    rows = []
    for record in page.items:
        if record.epoch is not None:
            record = producer.get(tenant, record.id) or record
        rows.append(job_row(record, limits))
    return rows, page.next_offset


class _SummaryCache:
    """Model summaries by job id (a job's spec never changes), least recently used out."""

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
    return {"row": job_row(record, limits), "history": record.history,
            "model": summary, "compile": spec.get("compile") or {},
            "fit": spec.get("fit") or {}, "callbacks": spec.get("callbacks") or [],
            "dataset_id": record.dataset_id, "final_logs": record.final_logs}
