"""Micro-batching: concurrent requests that arrive within a few milliseconds run as one batch.

One worker thread per model owns the model (so inference is serialised without further locks);
``submit(texts)`` returns a ``concurrent.futures.Future`` (await it with ``asyncio.wrap_future``).
The worker takes the first waiting request, then keeps collecting for ``wait_ms`` or until
``max_batch`` texts, runs ``fn`` once on all of them and hands each request its rows. If ``fn``
fails on a batch of several requests, each request is run again alone, so only the requests whose
own texts fail get the exception and their batch-mates still get their answers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Item:
    texts: list[str]
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """``fn(list[str]) -> sequence with one row per text``, called from one worker thread."""

    def __init__(self, fn: Callable[[list[str]], Sequence[Any]], *, max_batch: int = 64, wait_ms: float = 5.0,
                 name: str = "batcher"):
        self.fn, self.max_batch, self.wait = fn, max_batch, wait_ms / 1000.0
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._closed = False
        self.batches = 0  # batches run (for tests and logs)
        self.requests = 0  # requests served
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str]) -> Future:
        if self._closed:
            raise RuntimeError("batcher is closed")
        item = _Item(list(texts))
        self._queue.put(item)
        return item.future

    def close(self, timeout: float = 5.0) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)

    def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        items, n, stop = [first], len(first.texts), False
        deadline = time.monotonic() + self.wait
        while n < self.max_batch:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            items.append(item)
            n += len(item.texts)
        return items, stop

    def _run(self, texts: list[str]) -> Sequence[Any]:
        rows = self.fn(texts)
        if len(rows) != len(texts):
            raise RuntimeError(f"batch function returned {len(rows)} rows for {len(texts)} texts")
        return rows

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            items, stop = self._collect(first)
            items = [it for it in items if it.future.set_running_or_notify_cancel()]
            if not items:
                continue
            texts = [t for it in items for t in it.texts]
            try:
                rows = self._run(texts)
            except Exception as exc:
                if len(items) == 1:
                    items[0].future.set_exception(exc)
                    continue
                # one member may be poisoned: run each request alone, so only the failing ones fail
                log.warning("batch of %d requests failed (%s); running each alone", len(items), type(exc).__name__)
                for it in items:
                    try:
                        it.future.set_result(self._run(it.texts))
                    except Exception as one:
                        it.future.set_exception(one)
                        continue
                    self.batches += 1
                    self.requests += 1
                continue
            except BaseException as exc:  # not an error of one text (SystemExit, ...): every request learns of it
                for it in items:
                    it.future.set_exception(exc)
                continue
            self.batches += 1
            self.requests += len(items)
            log.debug("batch of %d texts from %d requests", len(texts), len(items))
            start = 0
            for it in items:
                it.future.set_result(rows[start:start + len(it.texts)])
                start += len(it.texts)
        # fail whatever is still queued after close()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(RuntimeError("server is shutting down"))
