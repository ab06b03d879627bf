"""The REST API (FastAPI): classify, attention, generate, models, health; the web UI mounted at /ui.

Every error is JSON ``{"error": "<one line saying what is wrong>"}``: 400 for a body that is not
UTF-8 JSON or names a path, 404 for an unknown run or model, 413 for an oversize body, 422 for a
request that breaks the schema or a limit, 503 when the chat model is off or missing. OpenAPI
docs are at /docs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from attnlab import __version__
from attnlab.errors import UserError
from attnlab.serve.errors import ApiError
from attnlab.serve.limits import Limits
from attnlab.serve.state import ServeState

log = logging.getLogger(__name__)

UI_PATH = "/ui"


# ------------------------------------------------------------------------------------------ schemas

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(_Strict):
    texts: list[StrictStr] = Field(description="texts to classify (1 to 64 by default, each up to 2,000 characters)",
                                   examples=[["a gorgeous, moving film", "a tedious mess"]])
    run: StrictStr | None = Field(None, description="name of a served run (its folder name); default: the first")


class AttentionRequest(_Strict):
    text: StrictStr = Field(description="the text (truncated to 128 tokens by default)",
                            examples=["the movie was not good at all"])
    model: StrictStr | None = Field(None, description="a served run or an installed registry model (minilm-l6, ...)")
    run: StrictStr | None = Field(None, description="a served run; same as model=<run name>")
    layer: StrictInt | None = Field(None, description="only this layer (negative counts from the end)")
    head: StrictInt | None = Field(None, description="only this head (with layer: one matrix; alone: in every layer)")


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: StrictStr


class GenerateRequest(_Strict):
    messages: list[Message] = Field(examples=[[{"role": "user", "content": "What is attention?"}]])
    max_new_tokens: StrictInt = Field(128, ge=1, description="at most 512 by default")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="0 = greedy (deterministic)")
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    seed: StrictInt | None = Field(None, description="fix the sampling for a reproducible reply")
    stream: StrictBool = Field(False, description="reply as server-sent events: data: {\"delta\": ...} ... [DONE]")


# --------------------------------------------------------------------------------------- middleware

def _error_body(status: int, message: str) -> tuple[dict, bytes]:
    body = json.dumps({"error": message}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, body


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (on Content-Length, and on the bytes actually received)
    with 413, and API bodies that are not UTF-8 with 400. Pure ASGI, so streaming is untouched."""

    def __init__(self, app: Any, max_bytes: int, utf8_prefix: str = "/v1/"):
        self.app, self.max_bytes, self.utf8_prefix = app, max_bytes, utf8_prefix

    async def _reply(self, send: Any, status: int, message: str) -> None:
        start, body = _error_body(status, message)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        too_big = f"request body is larger than {self.max_bytes:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    n = int(value)
                except ValueError:
                    return await self._reply(send, 400, "Content-Length is not a number")
                if n > self.max_bytes:
                    return await self._reply(send, 413, too_big)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._reply(send, 413, too_big)
            chunks.append(chunk)
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        if scope["path"].startswith(self.utf8_prefix):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return await self._reply(send, 400, f"request body is not valid UTF-8 (byte {exc.start})")
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls: wait for the disconnect, as the app expects

        return await self.app(scope, replay, send)


def _validation_error(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error") or e.get("msg", "")
            return 400, f"request body is not valid JSON: {detail}"
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        msg = e.get("msg", "invalid")
        if e.get("type") == "missing":
            msg = "required field is missing"
        elif e.get("type") == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - 3} more problems)" if len(errors) > 3 else ""
    return 422, "; ".join(parts) + more


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


# -------------------------------------------------------------------------------------------- app

def create_app(runs: Sequence[str | Path] = (), *, explain_models: Sequence[str] | None = None, chat: bool = True,
               chat_model: str | None = None, compare_dir: str | Path | None = None, limits: Limits | None = None,
               ui: bool = True, engine: str = "torch") -> FastAPI:
    """The FastAPI app serving ``runs`` (finished run directories, picked by folder name).

    ``explain_models``: registry models /v1/attention may load (default: the installed ones);
    ``chat``: serve /v1/generate and the Chat tab; ``compare_dir``: the comparison the Compare tab
    shows (default: the newest of runs/compare, runs/quickstart); ``ui``: mount the Gradio UI at /ui;
    ``engine``: what runs the classifiers, ``"torch"`` or ``"onnxruntime"`` (see ``Predictor``).
    """
    state = ServeState(runs, explain_models=explain_models, chat=chat, chat_model=chat_model,
                       compare_dir=compare_dir, limits=limits, engine=engine)
    lim = state.limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="attnlab", version=__version__, lifespan=lifespan,
                  description="Classify text with fine-tuned runs, look at attention, chat with SmolLM2. "
                              "Errors are JSON: {\"error\": \"...\"}.")
    app.state.serve = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=lim.max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"error": exc.one_line()}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_error(exc)
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, Any]:
        """Liveness: answers as soon as the server is up (models load on first use)."""
        return {"status": "ok", "version": __version__, "runs": list(state.runs)}

    @app.get("/v1/models", tags=["meta"])
    def models() -> dict[str, Any]:
        """Served runs (labels, metrics), models /v1/attention accepts, chat model availability."""
        return state.models_info()

    @app.post("/v1/classify", tags=["classify"])
    async def classify(req: ClassifyRequest) -> dict[str, Any]:
        """Per text: the predicted label, its probability (score) and every class probability."""
        start = time.perf_counter()
        run, rows = await state.classify(req.texts, req.run)
        return {"run": run.name, "results": rows, "elapsed_ms": round(1000 * (time.perf_counter() - start), 1)}

    @app.post("/v1/attention", tags=["explain"])
    def attention(req: AttentionRequest) -> dict[str, Any]:
        """Tokens, attention weights (every layer and head, or the chosen ones) and rollout importance.

        ``attentions`` is nested lists shaped ``shape`` with axes ``dims``: [layer, head, query, key]
        by default; [head, query, key] with ``layer``; [query, key] with both; [layer, query, key]
        with ``head`` only. Row i is how query token i spreads its attention over the key tokens.
        """
        return state.attention(req.text, req.model, req.run, req.layer, req.head)

    @app.post("/v1/generate", tags=["chat"], responses={200: {"content": {"text/event-stream": {}}}})
    async def generate(req: GenerateRequest) -> Any:
        """Chat completion from SmolLM2-135M-Instruct; ``stream: true`` answers with server-sent
        events: ``data: {"delta": "..."}`` lines, then ``data: [DONE]``."""
        from attnlab.chat import GenerationSettings, check_messages

        if req.max_new_tokens > lim.max_new_tokens:
            raise ApiError(422, f"max_new_tokens {req.max_new_tokens} is above this server's limit of "
                                f"{lim.max_new_tokens}")
        try:
            msgs = check_messages([m.model_dump() for m in req.messages], max_messages=lim.max_messages,
                                  max_chars=lim.max_message_chars)
        except UserError as exc:
            raise ApiError(422, exc.one_line()) from None
        settings = GenerationSettings(max_new_tokens=req.max_new_tokens, temperature=req.temperature,
                                      top_p=req.top_p, seed=req.seed).check()
        model = await run_in_threadpool(state.chat_model)
        await run_in_threadpool(model.prompt_ids, msgs, settings.max_new_tokens)  # too long -> 400 now, not mid-stream
        if not req.stream:
            text = await run_in_threadpool(model.generate, msgs, settings)
            return {"model": model.name, "message": {"role": "assistant", "content": text}}

        stop = threading.Event()
        pieces = model.stream(msgs, settings, stop=stop)

        async def events() -> AsyncIterator[str]:
            try:
                while (piece := await run_in_threadpool(next, pieces, None)) is not None:
                    yield _sse({"delta": piece})
                yield "data: [DONE]\n\n"
            except Exception as exc:  # headers are sent: report in-band
                log.exception("generation failed")
                msg = exc.one_line() if isinstance(exc, UserError) else f"internal error: {type(exc).__name__}"
                yield _sse({"error": msg})
            finally:
                stop.set()  # the client went away or we are done: stop generating

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    if ui:
        from attnlab.serve.ui import mount_ui

        mount_ui(app, state, path=UI_PATH)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/" if ui else "/docs")

    return app
