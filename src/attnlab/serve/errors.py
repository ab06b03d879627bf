"""The error a request can cause (an HTTP status and one line that says what is wrong), and the
app's exception handlers that turn every error into ``{"error": "<one line>"}``."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Turned into ``{"error": message}`` with ``status`` by the app's exception handler."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _field_name(part: Any) -> str:
    """One part of a field's path as it can be printed on one line: a client's own key may hold a
    newline, a quote or be very long, so anything but a plain name is shown JSON-quoted and cut."""
    text = str(part)
    if text and text.isprintable() and " " not in text and len(text) <= 64:
        return text
    quoted = json.dumps(text)
    return quoted if len(quoted) <= 66 else quoted[:62] + '..."'


def validation_error(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """(status, one line) for pydantic's errors on a request: 400 for a body that is not JSON,
    else 422 naming the first three fields at fault."""
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error") or e.get("msg", "")
            return 400, f"request body is not valid JSON: {detail}"
    parts = []
    for e in errors[:3]:
        loc = ".".join(_field_name(x) for x in e.get("loc", ()) if x != "body") or "body"
        msg = " ".join(str(e.get("msg", "invalid")).split())
        if e.get("type") == "missing":
            msg = "required field is missing"
        elif e.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - 3} more problems)" if len(errors) > 3 else ""
    return 422, "; ".join(parts) + more


def install_error_handlers(app: Any) -> None:
    """ApiError -> its status; UserError -> 400; schema errors -> 422 (400 for bad JSON); HTTP
    errors (404, 405, ...) -> their status; anything else -> 500, logged with its traceback."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from attnlab.errors import UserError

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"error": exc.one_line()}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = validation_error(exc.errors())
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
