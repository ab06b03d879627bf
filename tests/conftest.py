"""Shared fixtures: the SST-2 folder beside the repo and tiny trained runs (one per method)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SST2 = Path(os.environ.get("ATTNLAB_SST2_DIR") or REPO.parent / "shared" / "datasets" / "sst2")
TINY = dict(max_train_samples=48, max_eval_samples=24, epochs=1.0, batch_size=16, logging_steps=1)


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    if not (SST2 / "train.tsv").is_file():
        pytest.skip(f"SST-2 not found at {SST2} (set ATTNLAB_SST2_DIR)")
    return SST2


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, sst2_dir) -> dict[str, Path]:
    """One finished run per method, trained on 48 SST-2 rows for one epoch."""
    from attnlab.training import TrainConfig, train

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for method in ("full", "lora", "head"):
        cfg = TrainConfig.from_sources(data="sst2", data_dir=str(sst2_dir), method=method,
                                       output_dir=str(root / method), **TINY)
        runs[method] = train(cfg, progress=False).path
    return runs


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    rows = ["review,sentiment"]
    for i in range(30):
        rows.append(f"\"a lovely, warm film number {i}\",pos")
        rows.append(f"\"a dull and tired film number {i}\",neg")
    return write(tmp_path / "reviews.csv", "\n".join(rows) + "\n")
