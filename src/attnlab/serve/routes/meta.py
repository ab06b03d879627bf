"""Liveness and what the server serves: /healthz, /v1/models; the root redirect and the favicon."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from attnlab import __version__
from attnlab.serve.routes import State

router = APIRouter()


@router.get("/healthz", tags=["meta"])
def healthz(state: State) -> dict[str, Any]:
    """Liveness: answers as soon as the server is up (models load on first use)."""
    return {"status": "ok", "version": __version__, "runs": list(state.runs)}


@router.get("/v1/models", tags=["meta"])
def models(state: State) -> dict[str, Any]:
    """Served runs (labels, metrics), models /v1/attention accepts, chat model availability."""
    return state.models_info()


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/", include_in_schema=False)
def root(request: Request) -> RedirectResponse:
    ui_path = getattr(request.app.state, "ui_path", None)
    return RedirectResponse(f"{ui_path}/" if ui_path else "/docs")
