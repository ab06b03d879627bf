"""The app: the REST API (FastAPI; routers in :mod:`attnlab.serve.routes`) and the web UI mounted at /ui.

Every error is JSON ``{"error": "<one line saying what is wrong>"}``: 400 for a body that is not
UTF-8 JSON or names a path (or a Host the server does not answer to), 404 for an unknown run or
model, 413 for an oversize body, 422 for a request that breaks the schema or a limit, 503 when the
chat model is off or missing. OpenAPI docs are at /docs (no CDN), the schema at /openapi.json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from attnlab import __version__
from attnlab.serve.errors import install_error_handlers
from attnlab.serve.limits import Limits
from attnlab.serve.middleware import BodyLimitMiddleware, HostCheckMiddleware
from attnlab.serve.routes import attention, classify, docs, explain, generate, meta
from attnlab.serve.state import ServeState

UI_PATH = "/ui"


def create_app(runs: Sequence[str | Path] = (), *, explain_models: Sequence[str] | None = None, chat: bool = True,
               chat_model: str | None = None, compare_dir: str | Path | None = None, limits: Limits | None = None,
               ui: bool = True, engine: str = "torch", allowed_hosts: Sequence[str] | None = None,
               long_text: str = "truncate", long_text_aggregate: str = "mean",
               long_text_stride: int | None = None) -> FastAPI:
    """The FastAPI app serving ``runs`` (finished run directories, picked by folder name).

    ``explain_models``: registry models /v1/attention may load (default: the installed ones);
    ``chat``: serve /v1/generate and the Chat tab; ``compare_dir``: the comparison the Compare tab
    shows (default: the newest of runs/compare, runs/quickstart); ``ui``: mount the Gradio UI at /ui;
    ``engine``: what runs the classifiers, ``"torch"`` or ``"onnxruntime"`` (see ``Predictor``);
    ``long_text``, ``long_text_aggregate``, ``long_text_stride``: how /v1/classify reads texts longer than a
    run's max_length unless a request says otherwise (``attnlab.inference.long_text``);
    ``allowed_hosts``: the host names the app answers to (besides IP addresses; any other Host
    header gets a 400, against DNS rebinding); None: no check (``serve()`` passes the bound
    address's, see :func:`~attnlab.serve.middleware.allowed_hosts_for`). The server's models are
    freed when the app shuts down.
    """
    state = ServeState(runs, explain_models=explain_models, chat=chat, chat_model=chat_model,
                       compare_dir=compare_dir, limits=limits, engine=engine, long_text=long_text,
                       long_text_aggregate=long_text_aggregate, long_text_stride=long_text_stride)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="attnlab", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Classify text with fine-tuned runs, look at attention, chat with SmolLM2. "
                              "Errors are JSON: {\"error\": \"...\"}.")
    app.state.serve = state
    app.state.ui_path = UI_PATH if ui else None
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=state.limits.max_body_bytes)
    for area in (meta, classify, attention, explain, generate):
        app.include_router(area.router)
    docs.add_docs(app)
    if ui:
        from attnlab.serve.ui import mount_ui

        mount_ui(app, state, path=UI_PATH)
    if allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, allowed=allowed_hosts)  # added last: runs first
    return app
