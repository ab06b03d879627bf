"""POST /v1/classify: texts in, one prediction row per text out (micro-batched per run)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from attnlab.serve.routes import State
from attnlab.serve.schemas import ClassifyRequest

router = APIRouter()


@router.post("/v1/classify", tags=["classify"])
async def classify(req: ClassifyRequest, state: State) -> dict[str, Any]:
    """Per text: the predicted label, its probability (score) and every class probability (with
    ``long_text: "chunk"``, also how many windows the text was read in)."""
    start = time.perf_counter()
    run, rows = await state.classify(req.texts, req.run, req.long_text, req.long_text_aggregate)
    return {"run": run.name, "results": rows, "elapsed_ms": round(1000 * (time.perf_counter() - start), 1)}
