"""The REST API's request bodies (pydantic). Unknown fields are refused; so are values of the wrong
JSON type (``StrictStr``, ``StrictInt``, ``StrictBool``: "1" is not a layer, 1 is not a text)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(_Strict):
    texts: list[StrictStr] = Field(description="texts to classify (1 to 64 by default, each up to 2,000 characters)",
                                   examples=[["a gorgeous, moving film", "a tedious mess"]])
    run: StrictStr | None = Field(None, description="name of a served run (its folder name); default: the first")
    long_text: Literal["truncate", "chunk"] | None = Field(
        None, description="texts longer than the run's max_length: truncate, or chunk (overlapping windows, each "
                          "scored; the result row says how many); default: the server's (--long-text)")
    long_text_aggregate: Literal["mean", "max"] | None = Field(
        None, description="with chunk: mean or per-class max of the windows' probabilities; default: the server's")


class AttentionRequest(_Strict):
    text: StrictStr = Field(description="the text (truncated to 128 tokens by default)",
                            examples=["the movie was not good at all"])
    model: StrictStr | None = Field(None, description="a served run or an installed registry model (minilm-l6, ...)")
    run: StrictStr | None = Field(None, description="a served run; same as model=<run name>")
    layer: StrictInt | None = Field(None, description="only this layer (negative counts from the end)")
    head: StrictInt | None = Field(None, description="only this head (with layer: one matrix; alone: in every layer)")


class ExplainRequest(_Strict):
    text: StrictStr = Field(description="the text (truncated to 128 tokens by default)",
                            examples=["the movie was not good at all"])
    run: StrictStr | None = Field(None, description="name of a served classification run; default: the first")
    methods: list[StrictStr] | None = Field(
        None, description="attribution methods: attention, rollout, grad-rollout, ig, gradxinput, occlusion "
                          "(or [\"all\"]); default: all of them", examples=[["attention", "ig", "occlusion"]])


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
