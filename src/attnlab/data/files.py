"""Read a labelled local file (CSV, TSV, JSON, JSONL, Parquet) into a pandas DataFrame and find
its text and label columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from attnlab.errors import UserError

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
TEXT_NAMES = ("text", "sentence", "review", "content", "document", "tweet", "utterance", "comment", "body",
              "input", "query", "passage")
LABEL_NAMES = ("label", "labels", "sentiment", "class", "category", "target", "y", "gold", "polarity")


def file_format(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"unknown file format '{path.suffix or '(no suffix)'}'", where=str(path),
            fix="use a .csv, .tsv, .json, .jsonl or .parquet file",
        )
    return fmt


def read_table(path: Path) -> pd.DataFrame:
    """Read one file; every failure a user can cause becomes a one-line UserError."""
    if not path.exists():
        raise UserError("file not found", where=str(path), fix="check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise UserError("file is empty", where=str(path), fix="pass a file with a header and rows")
    fmt = file_format(path)
    try:
        if fmt == "csv":
            df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False, na_values=[""])
        elif fmt == "tsv":
            # NLP TSVs (GLUE, SST-2) are written without quoting: quotes are part of the text.
            df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8-sig", dtype=str,
                             keep_default_na=False, na_values=[""])
        elif fmt == "json":
            try:
                df = pd.read_json(path, encoding="utf-8-sig", dtype=False)
            except ValueError:
                df = pd.read_json(path, lines=True, encoding="utf-8-sig", dtype=False)
        elif fmt == "jsonl":
            df = pd.read_json(path, lines=True, encoding="utf-8-sig", dtype=False)
        else:
            df = _decode_bytes_columns(pd.read_parquet(path), path)
    except UnicodeDecodeError as exc:
        with open(path, "rb") as f:
            utf16 = f.read(2) in (b"\xff\xfe", b"\xfe\xff")  # a byte-order mark: Excel's "Unicode text"
        what = "file is UTF-16 text, not UTF-8" if utf16 else f"file is not valid UTF-8 text (byte {exc.start})"
        raise UserError(what, where=str(path), fix="re-save it as UTF-8") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if fmt == "jsonl":
            detail = _first_bad_json_line(path) or detail
        raise UserError(f"could not parse the {fmt} file: {detail}", where=str(path),
                        fix=f"check that it is well-formed {fmt}") from None
    except Exception as exc:  # pyarrow and friends raise their own types for garbage input
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if fmt == "jsonl":
            detail = _first_bad_json_line(path) or detail
        raise UserError(f"could not read the {fmt} file: {detail}", where=str(path),
                        fix=f"check that it is a valid {fmt} file") from None
    if df.empty or len(df.columns) == 0:
        raise UserError("file has no rows", where=str(path), fix="pass a file with a header and data rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _first_bad_json_line(path: Path, limit: int = 10_000_000) -> str | None:
    """'line N: why' for the first line of a JSON-lines file that is not a JSON object (pandas says only
    a byte position); None when every line parses. Reads one line at a time, at most ``limit`` lines."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if n > limit:
                return None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"line {n}: {exc.msg} (column {exc.colno})"
            if not isinstance(value, dict):
                return f"line {n}: a JSON {type(value).__name__}, not an object of column: value"
    return None


def _decode_bytes_columns(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Parquet can store text as raw bytes (binary columns): decode them as UTF-8, or say which column
    holds bytes that are not text."""
    for col in df.columns:
        values = df[col].dropna()
        if df[col].dtype != object or values.empty or not isinstance(values.iloc[0], bytes | bytearray):
            continue
        try:
            df[col] = df[col].map(lambda v: v.decode("utf-8") if isinstance(v, bytes | bytearray) else v)
        except UnicodeDecodeError as exc:
            raise UserError(f"column '{col}' holds bytes that are not UTF-8 text (byte {exc.start})",
                            where=str(path), fix="store the column as UTF-8 strings") from None
    return df


def _pick(columns: list[str], candidates: tuple[str, ...], role: str, flag: str, where: str) -> str:
    lower = {c.lower(): c for c in columns}
    found = [lower[n] for n in candidates if n in lower]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UserError(f"ambiguous {role} column: {', '.join(found)} all fit", where=where,
                        fix=f"choose one with {flag}")
    raise UserError(f"no {role} column found among: {', '.join(columns)}", where=where,
                    fix=f"name it with {flag}")


def find_columns(df: pd.DataFrame, text_column: str | None, label_column: str | None,
                 where: str, need_label: bool = True) -> tuple[str, str | None]:
    """Return (text column, label column), from the flags or by common names."""
    cols = list(df.columns)
    for flag, col in (("--text-column", text_column), ("--label-column", label_column)):
        if col is not None and col not in cols:
            raise UserError(f"column '{col}' not found; columns are: {', '.join(cols)}", where=where,
                            fix=f"fix {flag}")
    text = text_column or _pick(cols, TEXT_NAMES, "text", "--text-column", where)
    if label_column is None and not need_label:
        lower = {c.lower(): c for c in cols}
        present = [lower[n] for n in LABEL_NAMES if n in lower]
        return text, present[0] if len(present) == 1 else None
    label = label_column or _pick([c for c in cols if c != text], LABEL_NAMES, "label", "--label-column", where)
    if text == label:
        raise UserError("text and label columns are the same", where=where, fix="pass different columns")
    return text, label
