"""The built-in web page: jobs table and live curves (no external assets)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from lamina_service.webpage import PAGE

router = APIRouter(tags=["web"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """The dashboard page."""
    return HTMLResponse(PAGE)
