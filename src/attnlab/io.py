"""Atomic writes: a reader never sees a half-written file or folder.

Every file attnlab writes goes through here: the bytes go to a temporary file (or folder) beside
the target, in the same directory so that the final ``os.replace`` is a rename on one filesystem,
and only a complete result takes the target's name. On failure the temporary is removed and the
target, if there was one, is left as it was. What is written gets the permissions a plain
``open()`` / ``mkdir()`` would give it (the process umask applies), not ``tempfile``'s owner-only ones.

A write the filesystem refuses (a full disk or quota, no permission, a read-only disk) is the user's
to fix, not a bug: once the temporary is gone it becomes one :class:`~attnlab.errors.UserError` that
says what was being written, where, and what to do. A disk that fills up is recognised however the
writing library reports it (``OSError`` ENOSPC/EDQUOT, safetensors' "No space left on device", or
torch's bare "unexpected pos" with the disk found full).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from attnlab.errors import UserError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NEARLY_FULL_BYTES = 1 << 20  # a write failing with less than this free is taken for a full disk


def disk_full(exc: BaseException, folder: str | Path) -> bool:
    """Whether ``exc`` (raised while writing into ``folder``) means the disk or quota is full."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return True
    if any(os.strerror(code) in str(exc) for code in _DISK_FULL):  # e.g. safetensors' SafetensorError
        return True
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES  # e.g. torch.save's "unexpected pos"
    except OSError:
        return False


def _write_error(exc: Exception, target: Path) -> UserError | None:
    """The one-line error for a write into ``target`` that the filesystem refused, or ``None`` (a bug:
    the original exception stands). Asked before the temporary is removed, which would free space."""
    where = str(target.parent)
    if disk_full(exc, target.parent):
        return UserError(f"the disk is full: could not write {target.name}", where=where,
                         fix="free space on that disk (or choose a folder on another one) and run the command again")
    if not isinstance(exc, OSError):
        return None
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return UserError(f"no permission to write {target.name}: {exc.strerror or exc}", where=where,
                         fix="choose a folder you can write to")
    return UserError(f"could not write {target.name}: {exc.strerror or exc}", where=where,
                     fix="check that folder and its disk, then run the command again")


@contextlib.contextmanager
def _refused_writes_are_user_errors(target: Path, tmp: Path | None) -> Iterator[None]:
    """Remove ``tmp`` (a file or folder) on any failure; turn a write the filesystem refused into a UserError."""
    try:
        yield
    except BaseException as exc:
        mine = isinstance(exc, Exception) and not isinstance(exc, UserError | FileExistsError)
        error = _write_error(exc, target) if mine else None
        if tmp is not None:
            _remove(tmp)
        if error is None:
            raise
        raise error from None


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    elif os.path.lexists(tmp):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _create_beside(target: Path, suffix: str, create: Callable[[Path], None]) -> Path:
    """A new, uniquely named ``.<name>.<random><suffix>`` beside ``target``, made by ``create``
    (which must fail with ``FileExistsError`` if the name is taken)."""
    with _refused_writes_are_user_errors(target, None):
        target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{suffix}")
        try:
            with _refused_writes_are_user_errors(target, None):
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
    with _refused_writes_are_user_errors(path, tmp):
        yield tmp
        os.replace(tmp, path)


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
    with _refused_writes_are_user_errors(target, tmp):
        yield tmp
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} already exists")
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.replace(tmp, target)


__all__ = ["atomic_dir", "atomic_path", "disk_full", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
