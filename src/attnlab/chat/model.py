"""A chat model that streams its reply: SmolLM2-135M-Instruct (or any HF causal LM with a chat template).

``load_chat_model()`` loads the model once per process (``cache=False``: a copy the caller owns, as a
server does); ``ChatModel.stream(messages)`` yields the
reply piece by piece as it is generated. Generation runs in a worker thread that feeds a
transformers ``TextIteratorStreamer``; one lock per model makes concurrent callers take turns, and
a stop flag ends generation early when the caller stops reading (a closed browser tab, Ctrl-C).

Messages are OpenAI-style ``{"role": "system" | "user" | "assistant", "content": str}`` dicts.
"""

from __future__ import annotations

import bisect
import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from attnlab.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_CHAT_MODEL = "smollm2"
DEFAULT_SYSTEM = "You are a helpful, concise assistant."
ROLES = ("system", "user", "assistant")
MAX_NEW_TOKENS = 1024  # hard cap, whatever the caller asks for
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed accepts


@dataclass(frozen=True)
class GenerationSettings:
    """How to sample. ``temperature`` 0 means greedy (deterministic)."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    seed: int | None = None

    def check(self) -> GenerationSettings:
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise UserError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}, got {self.max_new_tokens}",
                            where="max_new_tokens")
        if not 0.0 <= self.temperature <= 2.0:
            raise UserError(f"temperature must be between 0 and 2, got {self.temperature}", where="temperature")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}", where="top_p")
        if self.seed is not None and not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            raise UserError(f"seed must be a 64-bit integer ({SEED_RANGE[0]} to {SEED_RANGE[1]}), got {self.seed}",
                            where="seed")
        return self


def check_messages(messages: Sequence[Any], *, max_messages: int = 64, max_chars: int = 8000) -> list[dict[str, str]]:
    """Validate a conversation and return it as plain dicts.

    Rules: 1..``max_messages`` messages; roles system/user/assistant; a system message only first;
    the last message is the user's; every content is a string of at most ``max_chars`` characters
    (user messages must not be blank).
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        raise UserError("messages must be a list of {role, content} objects", where="messages")
    if not messages:
        raise UserError("messages is empty", where="messages", fix="send at least one user message")
    if len(messages) > max_messages:
        raise UserError(f"too many messages: {len(messages)} (at most {max_messages})", where="messages",
                        fix="drop the oldest turns")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}", where=f"{where}.role", fix=f"use one of {', '.join(ROLES)}")
        if role == "system" and i != 0:
            raise UserError("a system message may only come first", where=f"{where}.role")
        if not isinstance(content, str):
            raise UserError("content must be a string", where=f"{where}.content")
        if len(content) > max_chars:
            raise UserError(f"content is {len(content)} characters long (at most {max_chars})",
                            where=f"{where}.content")
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: valid JSON ("\ud800"), not text a tokenizer takes
            raise UserError(f"content is not valid Unicode (an unpaired surrogate at character {exc.start + 1})",
                            where=f"{where}.content") from None
        if role == "user" and not content.strip():
            raise UserError("user message is empty", where=f"{where}.content")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "user":
        raise UserError("the last message must be the user's", where=f"messages[{len(out) - 1}].role",
                        fix="end the conversation with a user message")
    return out


class _StopFlag:
    """A transformers stopping criterion that fires once ``event`` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


@dataclass
class ChatModel:
    """A loaded causal LM and its chat tokenizer; thread-safe (one generation at a time)."""

    model: Any
    tokenizer: Any
    name: str
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def context_length(self) -> int:
        n = getattr(self.model.config, "max_position_embeddings", None)
        return int(n) if isinstance(n, int) and n > 0 else 2048

    def _encode(self, msgs: Sequence[dict[str, str]]) -> Any:
        return self.tokenizer.apply_chat_template(list(msgs), add_generation_prompt=True, return_tensors="pt",
                                                  return_dict=True)["input_ids"]

    def turn_lengths(self, msgs: Sequence[dict[str, str]]) -> list[int]:
        """How many prompt tokens each message takes, from one tokenization of the whole prompt.

        A message owns the tokens from its role name (in its header) to the next message's role
        name: exact for templates like ChatML that frame every turn alike. If the template changes
        a content beyond trimming it, or the tokenizer gives no character offsets, each content is
        counted alone (headers left out, so at worst a turn more than needed is dropped)."""
        text = self.tokenizer.apply_chat_template(list(msgs), add_generation_prompt=True, tokenize=False)
        starts, pos = [], 0
        for m in msgs:
            role_at = text.find(m["role"], pos)
            after = pos if role_at < 0 else role_at + len(m["role"])
            content = m["content"]
            at = text.find(content, after)
            if at < 0:  # a template that trims contents
                content = content.strip()
                at = text.find(content, after)
            if at < 0:
                break
            starts.append(at if role_at < 0 else role_at)
            pos = at + len(content)
        offsets = None
        if len(starts) == len(msgs):
            try:
                offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            except NotImplementedError:  # a slow (Python) tokenizer
                pass
        if offsets is None:
            alone = self.tokenizer([m["content"] for m in msgs], add_special_tokens=False)["input_ids"]
            return [len(ids) for ids in alone]
        counts = [0] * (len(msgs) + 1)  # counts[0]: what comes before the first message (a default system prompt)
        for start, _ in offsets:
            counts[bisect.bisect_right(starts, start)] += 1
        return counts[1:]

    def prompt_ids(self, messages: Sequence[dict[str, str]], max_new_tokens: int) -> Any:
        """The chat-template token ids of ``messages`` (1, T), dropping the oldest turns (never the
        system message or the last user message) until prompt + reply fit the context.

        What to drop is worked out from one tokenization of the whole conversation
        (:meth:`turn_lengths`), not by re-tokenizing it once per dropped turn; the prompt that is
        left is tokenized again to check it (and trimmed further in the rare case it still does not fit)."""
        msgs = list(messages)
        budget = self.context_length - max_new_tokens
        ids = self._encode(msgs)
        first = 1 if msgs and msgs[0]["role"] == "system" else 0
        if ids.shape[1] > budget and len(msgs) - first > 1:
            lengths, total, drop = self.turn_lengths(msgs), ids.shape[1], 0
            while total > budget and len(msgs) - first - drop > 1:
                total -= lengths[first + drop]
                drop += 1
            log.info("Dropping the %d oldest turns: the prompt (%d tokens) would not fit %d", drop, ids.shape[1],
                     budget)
            msgs = msgs[:first] + msgs[first + drop:]
            ids = self._encode(msgs)
            while ids.shape[1] > budget and len(msgs) - first > 1:
                del msgs[first]
                ids = self._encode(msgs)
        if ids.shape[1] > budget:
            raise UserError(f"the conversation is {ids.shape[1]} tokens long; with {max_new_tokens} new tokens "
                            f"it does not fit the model's {self.context_length}", where="messages",
                            fix="send a shorter message or ask for fewer new tokens")
        return ids

    def stream(self, messages: Sequence[Any], settings: GenerationSettings | None = None, *,
               stop: threading.Event | None = None, input_ids: Any = None) -> Iterator[str]:
        """Yield the assistant's reply to ``messages`` piece by piece, as it is generated.

        Generation stops within a token when the caller stops iterating (``close()`` on the
        generator) or sets ``stop`` (from any thread). ``input_ids``: the prompt, when the caller
        already has it from :meth:`prompt_ids` (so a long conversation is not trimmed twice).
        """
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        settings = (settings or GenerationSettings()).check()
        msgs = check_messages(messages)
        ids = self.prompt_ids(msgs, settings.max_new_tokens) if input_ids is None else input_ids
        dev = next(self.model.parameters()).device
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = stop or threading.Event()
        errors: list[BaseException] = []
        sample = settings.temperature > 0
        kwargs: dict[str, Any] = dict(
            input_ids=ids.to(dev), attention_mask=torch.ones_like(ids).to(dev), streamer=streamer,
            max_new_tokens=settings.max_new_tokens, do_sample=sample,
            repetition_penalty=settings.repetition_penalty, stopping_criteria=StoppingCriteriaList([_StopFlag(stop)]),
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)

        def work() -> None:
            try:
                with self.lock:  # released here, in the worker: a reader that never closes cannot hold it
                    if stop.is_set():
                        return
                    if settings.seed is not None:
                        torch.manual_seed(settings.seed)
                    start = time.perf_counter()
                    with torch.inference_mode():
                        out = self.model.generate(**kwargs)
                    n = out.shape[1] - ids.shape[1]
                    dt = time.perf_counter() - start
                    log.info("%s: %d new tokens in %.2fs (%.1f tokens/s)", self.name, n, dt, n / max(dt, 1e-9))
            except BaseException as exc:  # handed to the reader below
                errors.append(exc)
            finally:
                streamer.end()  # harmless when generate() already ended the stream

        worker = threading.Thread(target=work, name=f"generate-{self.name}", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if errors:
                    break
                if piece:
                    yield piece
        finally:
            stop.set()
        worker.join()  # the stream has ended, so this is at most a moment: the lock is free on return
        if errors:
            raise errors[0]

    def generate(self, messages: Sequence[Any], settings: GenerationSettings | None = None, *,
                 stop: threading.Event | None = None, input_ids: Any = None) -> str:
        """The whole reply at once (what was generated so far, if ``stop`` is set meanwhile)."""
        return "".join(self.stream(messages, settings, stop=stop, input_ids=input_ids))


def chat_model_available(ref: str = DEFAULT_CHAT_MODEL) -> bool:
    """Whether ``ref`` can be loaded without building anything (for a registry name: installed)."""
    from attnlab.models import MODELS

    src = MODELS.get(ref)
    return bool(src.probe()) if src is not None else True


def load_chat_model(ref: str = DEFAULT_CHAT_MODEL, *, cache: bool = True) -> ChatModel:
    """Load ``ref`` (registry name, HF folder or hub id), fp32, eval mode: once per process with
    ``cache`` (the default); with ``cache=False`` a fresh copy that only the caller holds (a server
    keeps it in its own cache and frees it when it closes).

    The first call for ``smollm2`` converts the packaged GGUF into an HF folder (~30 s, cached).
    """
    return _load_cached(ref) if cache else _load(ref)


def _load(ref: str) -> ChatModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attnlab.models import load_pretrained, resolve_model
    from attnlab.runtime import device

    resolved = resolve_model(ref)
    start = time.perf_counter()
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, resolved)
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"model '{resolved.name}' has no chat template", where=ref,
                        fix="use an instruction-tuned model such as smollm2")
    model = load_pretrained(AutoModelForCausalLM.from_pretrained, resolved, dtype=torch.float32)
    model.to(device()).eval()
    log.info("Loaded chat model %s in %.1fs", resolved.name, time.perf_counter() - start)
    return ChatModel(model, tokenizer, resolved.name)


_load_cached = functools.cache(_load)


class ChatSession:
    """A conversation kept in memory: ``send(text)`` streams the reply and remembers both turns
    (the last ``max_history`` messages; older turns are forgotten)."""

    max_history = 40

    def __init__(self, model: ChatModel, system: str | None = DEFAULT_SYSTEM,
                 settings: GenerationSettings | None = None):
        self.model, self.settings = model, (settings or GenerationSettings()).check()
        self.system = system
        self.history: list[dict[str, str]] = []

    @property
    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history

    def send(self, text: str) -> Iterator[str]:
        """Yield the reply to ``text``; the turn is kept once the reply is complete (or stopped)."""
        del self.history[:max(0, len(self.history) - self.max_history)]  # oldest turns first
        msgs = [*self.messages, {"role": "user", "content": text}]
        check_messages(msgs)
        pieces: list[str] = []
        try:
            for piece in self.model.stream(msgs, self.settings):
                pieces.append(piece)
                yield piece
        finally:
            if pieces:
                self.history += [{"role": "user", "content": text},
                                 {"role": "assistant", "content": "".join(pieces).strip()}]

    def reset(self) -> None:
        self.history.clear()
