"""POST /v1/generate: a chat reply, whole or streamed as server-sent events. Either way generation
stops when the client goes away: a stream when its connection closes, a whole reply when a watcher
polling the connection sees the client disconnect."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from attnlab.errors import UserError
from attnlab.serve.errors import ApiError
from attnlab.serve.routes import State
from attnlab.serve.schemas import GenerateRequest

log = logging.getLogger(__name__)
router = APIRouter()

DISCONNECT_POLL_S = 0.25  # how often a whole-reply generation checks that its client is still there


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _stop_on_disconnect(request: Request, stop: threading.Event) -> None:
    while not stop.is_set():
        if await request.is_disconnected():
            log.info("client went away: stopping its generation")
            stop.set()
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


async def _events(pieces: Iterator[str], stop: threading.Event) -> AsyncIterator[str]:
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


@router.post("/v1/generate", tags=["chat"], responses={200: {"content": {"text/event-stream": {}}}})
async def generate(req: GenerateRequest, request: Request, state: State) -> Any:
    """Chat completion from SmolLM2-135M-Instruct; ``stream: true`` answers with server-sent
    events: ``data: {"delta": "..."}`` lines, then ``data: [DONE]``."""
    from attnlab.chat import GenerationSettings, check_messages

    lim = state.limits
    if req.max_new_tokens > lim.max_new_tokens:
        raise ApiError(422, f"max_new_tokens {req.max_new_tokens} is above this server's limit of "
                            f"{lim.max_new_tokens}")
    try:
        msgs = check_messages([m.model_dump() for m in req.messages], max_messages=lim.max_messages,
                              max_chars=lim.max_message_chars)
        settings = GenerationSettings(max_new_tokens=req.max_new_tokens, temperature=req.temperature,
                                      top_p=req.top_p, seed=req.seed).check()
    except UserError as exc:
        raise ApiError(422, exc.one_line()) from None
    model = await run_in_threadpool(state.chat_model)
    # trimmed to fit once, here: a conversation too long is a 400 now, not an error mid-stream
    ids = await run_in_threadpool(model.prompt_ids, msgs, settings.max_new_tokens)
    stop = threading.Event()
    if req.stream:
        return StreamingResponse(_events(model.stream(msgs, settings, stop=stop, input_ids=ids), stop),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    watcher = asyncio.create_task(_stop_on_disconnect(request, stop))
    try:
        text = await run_in_threadpool(model.generate, msgs, settings, stop=stop, input_ids=ids)
    finally:
        stop.set()
        watcher.cancel()
    return {"model": model.name, "message": {"role": "assistant", "content": text}}
