"""Atomic writes: a reader never sees a half-written file or folder.

Every file attnlab writes goes through here: the bytes go to a temporary file (or folder) beside
the target, in the same directory so that the final ``os.replace`` is a rename on one filesystem,
and only a complete result takes the target's name. On failure the temporary is removed and the
target, if there was one, is left as it was. What is written gets the permissions a plain
``open()`` / ``mkdir()`` would give it (the process umask applies), not ``tempfile``'s owner-only ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _create_beside(target: Path, suffix: str, create: Callable[[Path], None]) -> Path:
    """A new, uniquely named ``.<name>.<random><suffix>`` beside ``target``, made by ``create``
    (which must fail with ``FileExistsError`` if the name is taken)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{suffix}")
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a new empty temporary file beside ``path`` (``.<name>.<random>.tmp``) to write; on
    success it is renamed onto ``path``, on failure removed."""
    path = Path(path)
    tmp = _create_beside(path, ".tmp", _new_file)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8, newlines written as given (no platform translation)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any, *, default: Callable[[Any], Any] | None = str) -> Path:
    """``obj`` as indented JSON (keys in their order) and a final newline; ``default`` turns what
    ``json`` cannot encode into something it can (``str`` unless given; ``None``: a ``TypeError``)."""
    return write_text_atomic(path, json.dumps(obj, indent=2, default=default) + "\n")


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new empty folder beside ``target`` (``.<name>.<random>``) to fill; on success it is
    renamed to ``target``, on failure removed.

    An existing ``target`` is replaced only at the end, once the new folder is complete, and only
    with ``overwrite``; without it an existing ``target`` is a ``FileExistsError`` (raised before
    anything is written)."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists")
    tmp = _create_beside(target, "", os.mkdir)
    try:
        yield tmp
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} already exists")
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["atomic_dir", "atomic_path", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
