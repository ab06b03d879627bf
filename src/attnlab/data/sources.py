"""Named data sets: SST-2 (local GLUE folder or the hub) and the offline movie-review snippets (their
sign as a class, or their mean rating as a regression target)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

from attnlab.errors import UserError
from attnlab.paths import cache_dir

log = logging.getLogger(__name__)

SST2_ENV = "ATTNLAB_SST2_DIR"
SST2_HUB_ID = "stanfordnlp/sst2"
SST2_LABELS = ["negative", "positive"]

VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
SNIPPETS_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
SNIPPETS_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
SNIPPETS_LABELS = ["negative", "positive"]
SNIPPETS_TARGET = "rating"  # the regression target of movie-snippet-ratings: the mean human rating


def sst2_frames(data_dir: str | None) -> dict[str, pd.DataFrame]:
    """SST-2 from a GLUE-style folder (train/validation/test .tsv) or, without one, the hub."""
    from attnlab.data.files import read_table

    folder = data_dir or os.environ.get(SST2_ENV)
    if folder:
        root = Path(folder).expanduser()
        if not (root / "train.tsv").is_file():
            raise UserError("no train.tsv in the SST-2 folder", where=str(root),
                            fix="pass a GLUE-style folder with train.tsv/validation.tsv[/test.tsv] via --data-dir "
                                f"or {SST2_ENV}")
        frames = {}
        for split in ("train", "validation", "test"):
            f = root / f"{split}.tsv"
            if f.is_file():
                df = read_table(f)
                if "label" not in df.columns:  # GLUE's unlabelled test.tsv
                    continue
                frames[split] = df[["sentence", "label"]].rename(columns={"sentence": "text"})
        return frames
    try:
        from datasets import load_dataset

        hub = load_dataset(SST2_HUB_ID)
    except Exception as exc:
        raise UserError(
            f"SST-2 is not available offline and the hub could not be reached ({type(exc).__name__})",
            where="--data sst2",
            fix=f"pass --data-dir DIR (a GLUE-style folder) or set {SST2_ENV}",
        ) from None
    # The hub's test split has no labels (-1): keep train and validation; a test split is carved
    # from train by the caller.
    return {s: hub[s].to_pandas().rename(columns={"sentence": "text"})[["text", "label"]]
            for s in ("train", "validation")}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _vader_sdist() -> Path:
    """The vaderSentiment 3.3.2 source distribution in the cache, fetched with pip once."""
    target = cache_dir() / "data" / VADER_SDIST
    if target.is_file() and _sha256(target.read_bytes()) == VADER_SDIST_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("Fetching %s with pip (once)", VADER_SDIST)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               "vaderSentiment==3.3.2", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / VADER_SDIST
        if proc.returncode != 0 or not got.is_file():
            raise UserError("could not fetch vaderSentiment==3.3.2 with pip", where="--data movie-snippets",
                            fix="check access to the package index, or pass your own --data FILE")
        if _sha256(got.read_bytes()) != VADER_SDIST_SHA256:
            raise UserError("vaderSentiment-3.3.2.tar.gz failed its sha256 check", where=str(got),
                            fix="clear the cache folder and retry")
        os.replace(got, target)
    return target


def _snippet_ratings() -> pd.DataFrame:
    """Every snippet as ``text`` and ``rating`` (the mean human rating, -4..4), checked against its sha256."""
    with tarfile.open(_vader_sdist()) as outer:
        inner_bytes = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile(SNIPPETS_MEMBER).read()
    if _sha256(raw) != SNIPPETS_SHA256:
        raise UserError("movie snippets failed their sha256 check", where=SNIPPETS_MEMBER,
                        fix="clear the cache folder and retry")
    rows = []
    for line in raw.decode("utf-8").splitlines():
        if not line.strip():
            continue
        _id, rating, text = line.split("\t", 2)
        rows.append((text.strip(), float(rating)))
    return pd.DataFrame(rows, columns=["text", SNIPPETS_TARGET])


def movie_snippets_frame() -> tuple[pd.DataFrame, int]:
    """The 10,605 rated movie-review snippets (Hutto & Gilbert, ICWSM 2014; MIT) as text/label.
    Label = sign of the mean human rating; rows rated exactly 0 are dropped (returned count)."""
    df = _snippet_ratings()
    neutral = int((df[SNIPPETS_TARGET] == 0).sum())
    df = df[df[SNIPPETS_TARGET] != 0]
    df = pd.DataFrame({"text": df["text"],
                       "label": (df[SNIPPETS_TARGET] > 0).map({False: "negative", True: "positive"})})
    return df.reset_index(drop=True), neutral


def movie_snippet_ratings_frame() -> pd.DataFrame:
    """The same 10,605 snippets as text/label with the label their mean human rating (-4..4, a float):
    the regression target the data set ships beside each text (every row kept, 0 included)."""
    df = _snippet_ratings()
    return pd.DataFrame({"text": df["text"], "label": df[SNIPPETS_TARGET]})
