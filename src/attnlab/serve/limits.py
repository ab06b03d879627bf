"""What one request may ask of the server. Every limit is enforced before any model runs, except
the attention-response cap, which needs the model's layer and head counts and the text's tokens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts per /v1/classify request
    max_chars: int = 2000  # characters per text (classify, attention)
    max_body_bytes: int = 1_000_000  # request body, checked on Content-Length and on the bytes received
    max_attention_tokens: int = 128  # /v1/attention truncates longer texts (the response grows as tokens^2)
    # attention weights in one /v1/attention response (~8 bytes of JSON each), checked from the shapes
    # before the response is built; the default lets minilm-l6 (6 layers x 12 heads) send every head
    # of a 128-token text (1,179,648 weights, ~9 MB), bigger models one layer or one head at a time
    max_attention_weights: int = 1_200_000
    max_new_tokens: int = 512  # /v1/generate
    max_messages: int = 64  # /v1/generate conversation length
    max_message_chars: int = 8000  # characters per chat message
    batch_wait_ms: float = 5.0  # how long the classify batcher waits for more requests to join a batch
