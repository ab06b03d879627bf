"""What one request may ask of the server. Every limit is enforced before any model runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts per /v1/classify request
    max_chars: int = 2000  # characters per text (classify, attention)
    max_body_bytes: int = 1_000_000  # request body, checked on Content-Length and on the bytes received
    max_attention_tokens: int = 128  # /v1/attention truncates longer texts (the response grows as tokens^2)
    max_new_tokens: int = 512  # /v1/generate
    max_messages: int = 64  # /v1/generate conversation length
    max_message_chars: int = 8000  # characters per chat message
    batch_wait_ms: float = 5.0  # how long the classify batcher waits for more requests to join a batch
