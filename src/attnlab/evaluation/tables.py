"""Measured numbers as tables: the one reader of benchmark result files and the one Markdown table writer.

A result file is a JSON object written by a benchmark script (``benchmarks/_common.write_results``):
the benchmark's name, date, command, hardware and library versions, its settings, and one or more
lists of row objects. :func:`read_result` reads one file and :func:`load_results` a folder of them.
:func:`markdown_table` writes every Markdown table attnlab prints or generates; :func:`column_table`
is the same table from row objects and ``(key, title, format spec)`` columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

Column = tuple[str, str, str]  # (key in the row, column title, format spec for format(); "" is str())
ALIGN = {"l": "---", "r": "--:", "c": ":-:"}


def cell(value: Any) -> str:
    """``value`` as text that is safe inside a Markdown table cell (``|`` escaped, no line breaks)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table ending in a newline; ``align`` holds one of l/r/c per column (default: all left)."""
    align = align or "l" * len(header)
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join(ALIGN[a] for a in align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_value(value: Any, spec: str = "", suffix: str = "", missing: str = "n/a") -> str:
    """``value`` formatted with ``spec`` and followed by ``suffix``, or ``missing`` when it is None."""
    return missing if value is None else format(value, spec) + suffix


def column_table(rows: Iterable[dict[str, Any]], columns: Sequence[Column], missing: str = "n/a") -> str:
    """Row objects as a Markdown table: one column per ``(key, title, format spec)``."""
    return markdown_table([title for _, title, _ in columns],
                          [[format_value(r.get(key), spec, missing=missing) for key, _, spec in columns] for r in rows])


def read_result(path: Path) -> dict[str, Any] | None:
    """The result stored in ``path``, or None when there is no such file.

    Raises ValueError (with the reason as its message) when the file is not a readable JSON object."""
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"unreadable: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from exc
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    return payload


def load_results(folder: Path, names: Iterable[str] = ()) -> dict[str, list[tuple[Path, dict[str, Any] | str]]]:
    """Every ``*.json`` file in ``folder`` (sorted by file name), grouped by benchmark: ``{name: [(file, result)]}``.

    A file's benchmark is the ``benchmark`` its result names, else the longest of ``names`` that its file
    name starts with, else its file name; a file that cannot be read has the reason in place of its result."""
    known = sorted(names, key=len, reverse=True)
    out: dict[str, list[tuple[Path, dict[str, Any] | str]]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            result: dict[str, Any] | str | None = read_result(path)
        except ValueError as exc:
            result = str(exc)
        if result is None:  # a folder named like a result file
            result = "not a file"
        name = result.get("benchmark") if isinstance(result, dict) else None
        if not isinstance(name, str) or not name:
            name = next((k for k in known if path.stem.startswith(k)), path.stem)
        out.setdefault(name, []).append((path, result))
    return out
