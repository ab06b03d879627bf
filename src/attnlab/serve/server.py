"""Run the API and the UI in one uvicorn process."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860


def serve(runs: Sequence[str | Path] = (), *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, chat: bool = True,
          ui: bool = True, compare_dir: str | Path | None = None, num_threads: int | None = None,
          log_level: str = "info", **app_kwargs: Any) -> None:
    """Serve ``runs`` on ``host:port`` until interrupted (binds 127.0.0.1 unless told otherwise)."""
    import uvicorn

    from attnlab.serve.api import create_app

    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
    app = create_app(runs, chat=chat, ui=ui, compare_dir=compare_dir, **app_kwargs)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Listening on %s: anyone who can reach this address can use the server (there is no "
                    "authentication); put it behind a proxy with authentication for a shared network", host)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
