"""Where attnlab keeps what it builds once and reuses: converted model folders, fetched data."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """attnlab's cache folder (``ATTNLAB_CACHE`` overrides the platform default)."""
    return Path(os.environ.get("ATTNLAB_CACHE") or user_cache_dir("attnlab"))


__all__ = ["cache_dir"]
