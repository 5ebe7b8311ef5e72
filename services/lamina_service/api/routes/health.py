"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lamina_service.api.deps import MetricsDep, ProducerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Redis unreachable"}})
def readyz(producer: ProducerDep) -> dict[str, str]:
    """Redis answers (503 otherwise)."""
    producer.ping()
    return {"status": "ready"}


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def prometheus(registry: MetricsDep) -> Response:
    """Prometheus exposition of the ``lamina_*`` metrics (job gauges read from Redis now)."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
