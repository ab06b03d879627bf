"""The models a server holds: each loaded once, on first use, and all freed by ``close()``.

One :class:`ModelCache` belongs to one :class:`~attnlab.serve.state.ServeState`; nothing is kept
process-wide, so closing a server (the app's shutdown) releases every model it loaded: the
classifiers, the attention models and the chat model.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


class ModelCache:
    """``get(key, load)``: the model under ``key``, loaded by ``load()`` the first time (one load at
    a time per key; other keys load meanwhile). ``lock(key)``: the lock that serialises the forward
    passes of that model (the batcher's worker and an attention request may share one model)."""

    def __init__(self) -> None:
        self._models: dict[Hashable, Any] = {}
        self._guard = threading.Lock()  # protects the dicts
        self._load_locks: dict[Hashable, threading.Lock] = defaultdict(threading.Lock)
        self._use_locks: dict[Hashable, threading.Lock] = defaultdict(threading.Lock)

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._guard:
            if key in self._models:
                return self._models[key]
            load_lock = self._load_locks[key]
        with load_lock:
            with self._guard:
                if key in self._models:  # loaded while we waited
                    return self._models[key]
            model = load()
            with self._guard:
                self._models[key] = model
            return model

    def loaded(self, key: Hashable) -> bool:
        with self._guard:
            return key in self._models

    def keys(self) -> list[Hashable]:
        """The keys of the models loaded now, in load order."""
        with self._guard:
            return list(self._models)

    def lock(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._use_locks[key]

    def close(self) -> None:
        """Drop every model (a later ``get`` loads again) and give their memory back."""
        with self._guard:
            n, self._models = len(self._models), {}
        if n:
            gc.collect()  # models hold reference cycles (modules <-> hooks); free them now, not later
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:
                pass
            log.info("Freed %d models", n)


@contextmanager
def eager_attention(model: Any) -> Iterator[bool]:
    """Within the block, ``model`` computes attention in eager mode, the one kernel that returns
    the attention weights (SDPA and flash never materialise them); its kernel is restored after.
    Yields whether it is eager (False for a transformers class that cannot switch at run time).

    Lets the attention extractor run on the very model a classifier loaded, instead of a second
    copy. Call it holding the model's lock: the switch is visible to every thread using the model."""
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    if impl in (None, "eager"):
        yield True
        return
    switch = getattr(model, "set_attn_implementation", None)
    if switch is not None:
        switch("eager")
    try:
        yield config._attn_implementation == "eager"
    finally:
        if config._attn_implementation != impl:
            switch(impl)
