"""Bad local files end in one line that says where: the JSON-lines line number, the Parquet column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attnlab.data.files import read_table
from attnlab.errors import UserError


def test_jsonl_bad_line_is_named(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n{"text": "c", label}\n')
    with pytest.raises(UserError, match=r"line 4: Expecting"):
        read_table(p)


def test_jsonl_line_that_is_not_an_object_is_named(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"line 2: a JSON list"):
        read_table(p)


def test_parquet_bytes_text_is_decoded(tmp_path):
    p = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": [b"a good film", "caf\u00e9".encode()], "label": ["pos", "neg"]}), p)
    df = read_table(p)
    assert list(df["text"]) == ["a good film", "caf\u00e9"]


def test_parquet_bytes_that_are_not_text_are_refused(tmp_path):
    p = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": [b"fine", b"\xff\xfe\x00"], "label": ["pos", "neg"]}), p)
    with pytest.raises(UserError, match=r"column 'text' holds bytes that are not UTF-8"):
        read_table(p)
