"""Run the API and the UI in one uvicorn process."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
MMAP_THRESHOLD_BYTES = 128 * 1024


def steady_malloc(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Keep a long-running server's memory flat on glibc (Linux): fix malloc's mmap threshold.

    glibc raises that threshold each time a large block is freed, so the tensors of later batches
    (every batch a different shape) are carved out of the heap instead of mapped and unmapped; the
    heap fragments and the resident memory creeps up by tens of MiB per thousand requests
    (benchmarks/serve_load.py measures it). A fixed threshold stops that. Does nothing if
    ``MALLOC_MMAP_THRESHOLD_`` is set or the C library is not glibc; returns whether it was set."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        ok = bool(libc.mallopt(-3, threshold))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    log.debug("malloc mmap threshold fixed at %d bytes: %s", threshold, ok)
    return ok


def serve(runs: Sequence[str | Path] = (), *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, chat: bool = True,
          ui: bool = True, compare_dir: str | Path | None = None, num_threads: int | None = None,
          log_level: str = "info", **app_kwargs: Any) -> None:
    """Serve ``runs`` on ``host:port`` until interrupted (binds 127.0.0.1 unless told otherwise).

    Requests must name the server in their Host header by an IP address, ``localhost``, the bound
    name (this machine's name when bound to every address) or a name in $ATTNLAB_ALLOWED_HOSTS
    (comma-separated; ``*`` turns the check off); any other Host gets a 400 (DNS rebinding)."""
    import uvicorn

    from attnlab.serve.api import create_app
    from attnlab.serve.middleware import allowed_hosts_for

    steady_malloc()
    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
    app_kwargs.setdefault("allowed_hosts", allowed_hosts_for(host))
    app = create_app(runs, chat=chat, ui=ui, compare_dir=compare_dir, **app_kwargs)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Listening on %s: anyone who can reach this address can use the server (there is no "
                    "authentication); put it behind a proxy with authentication for a shared network", host)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
