"""Read a labelled local file (CSV, TSV, JSON, JSONL, Parquet) into a pandas DataFrame and find
its text and label columns: by the flags, else by their names, else by what they hold (the one
column of free text; the one column with few distinct values)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from attnlab.errors import UserError

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
TEXT_NAMES = ("text", "sentence", "review", "content", "document", "tweet", "utterance", "comment", "body",
              "input", "query", "passage")
LABEL_NAMES = ("label", "labels", "sentiment", "class", "category", "target", "y", "gold", "polarity")
SAMPLE_ROWS = 10_000  # rows a column's content is judged on
TEXT_MIN_WORDS = 2.0  # free text: at least this many words per value on average ...
TEXT_MIN_DISTINCT = 0.5  # ... and at least this share of distinct values
LABEL_MAX_CLASSES = 1000  # a label column: 2..this many distinct values, at most half the rows


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
    df = _read_columnar(path, fmt)
    if df is None:
        df = _read_pandas(path, fmt)
    if df.empty or len(df.columns) == 0:
        raise UserError("file has no rows", where=str(path), fix="pass a file with a header and data rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_pandas(path: Path, fmt: str) -> pd.DataFrame:
    """``path`` read by pandas; every failure a user can cause becomes a one-line UserError."""
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
    return df


def _read_columnar(path: Path, fmt: str) -> pd.DataFrame | None:
    """A CSV or JSON-lines file read by Arrow's multi-threaded columnar readers (several times faster than
    pandas' own on big files, and the strings stay in Arrow memory); None where Arrow refuses the file
    (a quoted line break, a column of mixed types, bad bytes): the pandas readers then read it, or say
    precisely what is wrong with it."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        if fmt == "csv":
            return pd.read_csv(path, engine="pyarrow", encoding="utf-8-sig", dtype=str, keep_default_na=False,
                               na_values=[""])
        if fmt == "jsonl":
            # block by block: the whole-file reader holds every block's parse buffers at once (about
            # 2.3x the file at its peak, where the streamed read stays near the table's own size)
            reader = pj.open_json(path)
            table = pa.Table.from_batches(list(reader), schema=reader.schema)
            if any(pa.types.is_nested(t) for t in table.schema.types):
                return None  # lists and objects: pandas keeps them as Python values
            return table.to_pandas()
    except Exception:  # any refusal: the pandas path decides
        return None
    return None


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


@dataclass(frozen=True)
class Profile:
    """What a column holds, judged on a sample of its non-empty values."""

    rows: int
    distinct: int
    words: float  # whitespace-separated words per value, on average
    numeric: bool
    lists: bool = False  # every value a list (or a JSON list in a string): a multi-label column

    @property
    def free_text(self) -> bool:
        return (not self.numeric and not self.lists and self.words >= TEXT_MIN_WORDS
                and self.distinct >= max(2, TEXT_MIN_DISTINCT * self.rows))  # one value is no sign of free text

    @property
    def label_like(self) -> bool:
        return 2 <= self.distinct <= min(LABEL_MAX_CLASSES, self.rows // 2)


def profile(values: pd.Series) -> Profile:
    """The :class:`Profile` of a column (its first :data:`SAMPLE_ROWS` non-empty values)."""
    v = values.dropna().head(SAMPLE_ROWS * 2).astype(str).str.strip()
    v = v[v != ""].head(SAMPLE_ROWS)
    if v.empty:
        return Profile(0, 0, 0.0, False)
    numeric = bool(pd.to_numeric(v, errors="coerce").notna().all())
    lists = bool(v.str.startswith("[").all() and v.str.endswith("]").all())  # str() of a list, or a JSON list
    return Profile(len(v), int(v.nunique()), float(v.str.split().str.len().mean()), numeric, lists)


@dataclass(frozen=True)
class Columns:
    """The text and label columns of a file and, per role, why that column (``why["text"]``)."""

    text: str
    label: str | None
    why: dict[str, str] = field(default_factory=dict)


def _by_name(columns: list[str], candidates: tuple[str, ...], role: str, flag: str, where: str) -> str | None:
    lower = {c.lower(): c for c in columns}
    found = [lower[n] for n in candidates if n in lower]
    if len(found) > 1:
        raise UserError(f"ambiguous {role} column: {', '.join(found)} all fit", where=where,
                        fix=f"choose one with {flag}")
    return found[0] if found else None


def _text_by_content(df: pd.DataFrame, columns: list[str], where: str) -> tuple[str, str]:
    profiles = {c: profile(df[c]) for c in columns}
    found = [c for c, p in profiles.items() if p.free_text]
    if len(found) > 1:
        raise UserError(f"ambiguous text column: {', '.join(found)} all hold free text", where=where,
                        fix="choose one with --text-column")
    if not found:
        raise UserError(f"no text column found among: {', '.join(columns)} (none is named like one or holds free "
                        "text)", where=where, fix="name it with --text-column")
    p = profiles[found[0]]
    return found[0], (f"the one column of free text ({p.words:.1f} words per value, "
                      f"{p.distinct / p.rows:.0%} distinct{_sampled(p, len(df))})")


def _label_by_content(df: pd.DataFrame, columns: list[str], where: str, label_kind: str = "class") -> tuple[str, str]:
    profiles = {c: profile(df[c]) for c in columns}
    if label_kind != "class":  # a regression target: the one numeric column; label sets: the one of lists
        return _target_by_content(profiles, label_kind, where, len(df))
    found = [c for c, p in profiles.items() if p.label_like]
    if len(found) > 1:
        what = ", ".join(f"{c} ({profiles[c].distinct} values)" for c in found)
        raise UserError(f"ambiguous label column: {what} all have few distinct values", where=where,
                        fix="choose one with --label-column")
    if not found:
        raise UserError(f"no label column found among: {', '.join(columns) or '(no other column)'} (none is named "
                        "like one or has few distinct values)", where=where, fix="name it with --label-column")
    p = profiles[found[0]]
    return found[0], f"the one column with few distinct values ({p.distinct} in {p.rows:,} rows{_sampled(p, len(df))})"


def _target_by_content(profiles: dict[str, Profile], label_kind: str, where: str, total: int) -> tuple[str, str]:
    """The label column of a regression (``score``) or multi-label (``multi``) file by what it holds."""
    what = "numbers" if label_kind == "score" else "lists of labels"
    found = [c for c, p in profiles.items() if (p.numeric if label_kind == "score" else p.lists) and p.rows]
    if len(found) != 1:
        some = f"ambiguous label column: {', '.join(found)} all hold {what}" if found else (
            f"no label column found among: {', '.join(profiles) or '(no other column)'} (none is named like one or "
            f"holds {what})")
        raise UserError(some, where=where, fix="choose one with --label-column")
    p = profiles[found[0]]
    return found[0], f"the one column of {what} ({p.rows:,} rows{_sampled(p, total)})"


def _sampled(p: Profile, total: int) -> str:
    return f", a sample of {total:,}" if p.rows < total and p.rows >= SAMPLE_ROWS else ""


def detect_columns(df: pd.DataFrame, text_column: str | None, label_column: str | None,
                   where: str, need_label: bool = True, label_kind: str = "class") -> Columns:
    """The text and label columns: the flags' ones, else the one named like one (:data:`TEXT_NAMES`,
    :data:`LABEL_NAMES`), else the one whose content fits (:class:`Profile`). Several that fit
    equally are a UserError naming them; without ``need_label`` the label is found by name or not at all.
    ``label_kind`` (:mod:`attnlab.data.labels`) says what a label column holds when it is found by content:
    few distinct values (``class``), numbers (``score``) or lists (``multi``)."""
    cols = list(df.columns)
    for flag, col in (("--text-column", text_column), ("--label-column", label_column)):
        if col is not None and col not in cols:
            raise UserError(f"column '{col}' not found; columns are: {', '.join(cols)}", where=where,
                            fix=f"fix {flag}")
    why: dict[str, str] = {}
    if text_column:
        text, why["text"] = text_column, "given by --text-column"
    elif (text := _by_name(cols, TEXT_NAMES, "text", "--text-column", where)) is not None:
        why["text"] = "named like a text column"
    else:
        named_label = None if label_column else _by_name(cols, LABEL_NAMES, "label", "--label-column", where)
        text, why["text"] = _text_by_content(df, [c for c in cols if c not in (label_column, named_label)], where)
    rest = [c for c in cols if c != text]
    if label_column:
        label, why["label"] = label_column, "given by --label-column"
    elif (label := _by_name(rest, LABEL_NAMES, "label", "--label-column", where)) is not None:
        why["label"] = "named like a label column"
    elif need_label:
        label, why["label"] = _label_by_content(df, rest, where, label_kind)
    if text == label:
        raise UserError("text and label columns are the same", where=where, fix="pass different columns")
    return Columns(text, label, why)


def find_columns(df: pd.DataFrame, text_column: str | None, label_column: str | None,
                 where: str, need_label: bool = True, label_kind: str = "class") -> tuple[str, str | None]:
    """(text column, label column) of :func:`detect_columns`."""
    c = detect_columns(df, text_column, label_column, where, need_label, label_kind)
    return c.text, c.label
