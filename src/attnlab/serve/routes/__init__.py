"""The REST API, one router per area: ``meta`` (/healthz, /v1/models), ``classify``, ``attention``, ``explain``,
``generate`` (chat), and ``docs`` (the OpenAPI page, served without a CDN). Every route reaches the
server's :class:`~attnlab.serve.state.ServeState` through the :data:`State` dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from attnlab.serve.state import ServeState


async def serve_state(request: Request) -> ServeState:
    """The ServeState of the app that handles ``request`` (``app.state.serve``)."""
    return request.app.state.serve


State = Annotated[ServeState, Depends(serve_state)]
