"""One run, five ways to ask it (issue #14): ``attnlab predict``, ``attnlab.load(run).predict``, the
onnxruntime engine, ``POST /v1/classify`` and the plain transformers lines of
docs/concepts/fine-tuning.md give the same label for every text whose label the precision each path
computes in can decide (tests/agreement.py: the plain lines' fp32 probabilities are the reference).

The run is a random 2-layer BERT (conftest's ``tiny_bert``) trained with mean pooling (what the
packaged sentence-transformers models use, and the path most easily lost on the way to a surface)
until it is sure of its training texts, which are the texts asked about here."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from agreement import decided
from conftest import run_cli
from test_pooling import DOC, _doc_snippet

from attnlab import runtime

ROWS = 24


@pytest.fixture(scope="module")
def mean_run(tmp_path_factory, tiny_bert, sst2_dir):
    """(run directory, its training texts): full fine-tuning, mean pooling, fp32, trained to be confident.

    One evaluation, at the last step: 8 validation rows cannot tell a 24-row run's checkpoints apart, and
    choosing among them by chance kept a nearly untrained first one on some CPUs."""
    from attnlab.training import TrainConfig
    from attnlab.training.build import load_config_data
    from attnlab.training.train import train

    cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method="full",
                                   pooling="mean", output_dir=str(tmp_path_factory.mktemp("agree") / "run"),
                                   max_train_samples=ROWS, max_eval_samples=8, max_steps=90, batch_size=8,
                                   learning_rate=3e-3, early_stopping_patience=None, precision="fp32",
                                   num_threads=1, eval_every_steps=90)
    run = train(cfg, progress=False).path
    return run, list(load_config_data(cfg).splits["train"]["text"])  # the rows it trained on


def _plain_probabilities(run, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """The documented plain transformers lines (docs/concepts/fine-tuning.md), run on ``texts``."""
    snippet = _doc_snippet().replace('run = "runs/quickstart/lora"', f'run = "{run}"')
    snippet = re.sub(r"\ntexts = .*\n", f"\ntexts = {texts!r}\n", snippet)
    scope: dict = {}
    exec(compile(snippet, str(DOC), "exec"), scope)
    return scope["logits"].softmax(-1).numpy(), scope["labels"]


def test_every_surface_predicts_the_labels_the_plain_transformers_lines_predict(mean_run, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import attnlab
    from attnlab.serve import create_app

    run, texts = mean_run
    assert yaml.safe_load((run / "config.yaml").read_text())["pooling"] == "mean"
    code, out, err = run_cli(["predict", str(run), *texts], capsys)
    assert code == 0, err
    surfaces = {"attnlab predict": [json.loads(line)["label"] for line in out.splitlines()],
                "attnlab.load().predict": [r["label"] for r in attnlab.load(str(run)).predict(texts)]}
    with TestClient(create_app([run], ui=False, chat=False, explain_models=[])) as client:
        r = client.post("/v1/classify", json={"texts": texts})
        assert r.status_code == 200, r.text
        surfaces["POST /v1/classify"] = [row["label"] for row in r.json()["results"]]
    probs, labels = _plain_probabilities(run, texts)
    plain = [labels[i] for i in probs.argmax(-1)]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:  # the other four still agree; the ONNX engine is an extra
        pass
    else:
        surfaces["onnxruntime engine"] = [r["label"] for r in attnlab.load(str(run), engine="onnxruntime")
                                          .predict(texts)]

    # the CLI, the Python API and the server compute in the machine's default precision; ONNX in fp32
    keep = decided(probs, runtime.resolve_precision("auto"))
    assert keep.sum() >= len(texts) // 2 and len({plain[i] for i in np.flatnonzero(keep)}) == 2, (
        "the run is not sure enough of its texts for the check to mean anything", probs)
    for surface, got in surfaces.items():
        assert len(got) == len(texts), surface
        rows = keep if surface != "onnxruntime engine" else decided(probs, "fp32")
        wrong = [(texts[i], got[i], plain[i]) for i in np.flatnonzero(rows) if got[i] != plain[i]]
        assert not wrong, f"{surface} disagrees with the plain transformers lines: {wrong}"
