"""The speed options: int8 and single-sentence prediction paths, thread defaults, the training
speed flags, and the benchmark scripts' arithmetic. No timing assertions: those live in
benchmarks/ (train_speed.py, infer_speed.py) and docs/speed.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from agreement import assert_rows_distinguishable, assert_same_predictions, prob_atol
from scripts import load_script

from attnlab.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a moving and funny film", "a dull, lifeless mess", "it is fine", "the best thing I have seen this year",
         "boring", "an uneven but often charming comedy about growing up in a small town"]


def _bench(name: str):
    return load_script(REPO / "benchmarks" / f"{name}.py", f"bench_{name}")


# -- prediction paths ----------------------------------------------------------------------------

def test_int8_predictor_quantizes_the_encoder_and_agrees_with_fp32(tiny_runs):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    from attnlab.inference import Predictor

    fp32 = Predictor.from_run(tiny_runs["lora"])
    int8 = Predictor.from_run(tiny_runs["lora"], quantize="int8")
    kinds = {name: type(m) for name, m in int8.model.named_modules()}
    assert any(k is DynamicInt8Linear for k in kinds.values())
    assert kinds["classifier"] is torch.nn.Linear  # the head stays fp32
    assert not any(isinstance(m, DynamicInt8Linear) for m in fp32.model.modules())  # the source is untouched
    p32, p8 = fp32.predict_proba(TEXTS), int8.predict_proba(TEXTS)
    assert p8.shape == p32.shape and np.allclose(p8.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(p8, p32, atol=0.03)
    sure = np.abs(p32[:, 1] - 0.5) > 0.03  # where fp32 is not on the fence, int8 gives the same label
    assert (p8.argmax(1) == p32.argmax(1))[sure].all()
    assert [r["label"] for r in int8.predict(TEXTS)] == [int8.labels[k] for k in p8.argmax(1)]


def test_one_text_takes_the_unbatched_path_and_matches_the_batch(tiny_runs):
    from attnlab.inference import Predictor

    pr = Predictor.from_run(tiny_runs["full"], batch_size=2)
    batch = pr.predict_proba(TEXTS)
    for i, text in enumerate(TEXTS):
        one = pr.predict_proba([text])
        assert one.shape == (1, 2)
        assert_same_predictions(one, batch[i:i + 1], pr.precision)
    assert pr.predict("a moving and funny film")[0]["label"] in pr.labels  # a bare string is one text


def test_batches_are_padded_per_batch_and_keep_the_input_order(tiny_runs):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab.inference import Predictor

    model_dir = tiny_runs["full"] / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        ref = torch.softmax(model(**tok(TEXTS, padding=True, return_tensors="pt")).logits, -1).numpy()
    seen: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda m, args, kw: seen.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    assert_rows_distinguishable(ref)  # a row out of place would be caught
    pr = Predictor(model, tok, ["negative", "positive"], batch_size=4, precision="fp32")
    assert_same_predictions(pr.predict_proba(TEXTS), ref)
    lengths = sorted((len(tok(t)["input_ids"]) for t in TEXTS), reverse=True)
    assert seen == [(4, lengths[0]), (2, lengths[4])]  # longest first, each padded to its own longest


def test_quantize_option_is_checked(tiny_runs):
    from attnlab.inference import Predictor

    with pytest.raises(UserError, match="quantize"):
        Predictor.from_run(tiny_runs["head"], quantize="int4")
    with pytest.raises(UserError, match="CPU only"):
        Predictor.from_run(tiny_runs["head"], quantize="int8", device="meta")


def test_predict_cli_takes_quantize(tiny_runs, capsys):
    from attnlab.cli import main

    assert main(["predict", str(tiny_runs["head"]), "a great film", "awful", "--quantize", "int8"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(r["label"] in ("negative", "positive") for r in rows)


def test_onnxruntime_engine_fuses_the_encoder_and_matches_torch(tiny_runs, caplog):
    pytest.importorskip("onnxruntime")
    from attnlab.inference import Predictor

    torch_pr = Predictor.from_run(tiny_runs["lora"], precision="fp32")  # ORT runs fp32: compare like with like
    caplog.set_level("INFO")
    ort_pr = Predictor.from_run(tiny_runs["lora"], engine="onnxruntime", batch_size=4)
    assert not [r.name for r in caplog.records if r.levelname == "INFO"]  # ORT's tools log every fusion
    info = ort_pr.onnx.info
    assert info["fused"] and info["fused_operators"]["Attention"] == 6  # one fused attention op per layer
    assert info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    ref = torch_pr.predict_proba(TEXTS)
    np.testing.assert_allclose(ort_pr.predict_proba(TEXTS), ref, atol=1e-4)  # padded batches, input order kept
    np.testing.assert_allclose(ort_pr.predict_proba([TEXTS[5]])[0], ref[5], atol=1e-4)  # one text, unpadded
    assert ort_pr.precision == "fp32"


def test_onnxruntime_int8_quantizes_the_matmuls(tiny_runs):
    pytest.importorskip("onnxruntime")
    from attnlab.inference import Predictor

    p32 = Predictor.from_run(tiny_runs["full"]).predict_proba(TEXTS)
    int8 = Predictor.from_run(tiny_runs["full"], engine="onnxruntime", quantize="int8")
    assert int8.onnx.info["quantized_ops"] == 6 * 4  # per layer: fused q/k/v attention, out, up, down
    p8 = int8.predict_proba(TEXTS)
    assert np.allclose(p8.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(p8, p32, atol=0.05)


def test_onnxruntime_engine_checks_and_explains(tiny_runs, monkeypatch):
    pytest.importorskip("onnxruntime")
    from attnlab.inference import Predictor, onnx_engine

    with pytest.raises(UserError, match="unknown engine"):
        Predictor.from_run(tiny_runs["head"], engine="tensorrt")
    with pytest.raises(UserError, match="CPU only"):
        Predictor.from_run(tiny_runs["head"], engine="onnxruntime", device="meta")
    from attnlab.inference.text2text import Text2TextPredictor

    with pytest.raises(UserError, match="not text2text"):  # refused before the model is touched
        Text2TextPredictor(None, None, ["negative", "positive"], engine="onnxruntime")
    monkeypatch.setattr(onnx_engine, "LOGIT_TOLERANCE", -1.0)  # no graph can match: fused, then plain, then refuse
    with pytest.raises(UserError, match="does not reproduce"):
        Predictor.from_run(tiny_runs["head"], engine="onnxruntime")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed
    with pytest.raises(UserError, match=r"attnlab\[onnx\]"):
        Predictor.from_run(tiny_runs["head"], engine="onnxruntime")


def test_export_onnx_writes_one_runnable_file(tiny_bert, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab.inference.onnx_engine import export_onnx

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    info = export_onnx(model, tok, tmp_path / "m.onnx")
    assert info["fused"] and info["fused_operators"]["Attention"] == 2 and "plain_path" not in info
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    enc = tok(TEXTS, padding=True, return_tensors="np")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(["logits"], {k: enc[k] for k in info["inputs"]})[0]
    with torch.no_grad():
        want = model(**tok(TEXTS, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_predict_cli_takes_engine(tiny_runs, capsys):
    pytest.importorskip("onnxruntime")
    from attnlab.cli import main

    assert main(["predict", str(tiny_runs["head"]), "a great film", "awful", "--engine", "onnxruntime"]) == 0
    ort_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(tiny_runs["head"]), "a great film", "awful"]) == 0
    torch_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    from attnlab import runtime

    used = runtime.resolve_precision("auto", runtime.device())  # the torch CLI path's precision (ORT: fp32)
    atol = prob_atol(used)
    for o, t in zip(ort_rows, torch_rows, strict=True):
        assert o["score"] == pytest.approx(t["score"], abs=atol)
        if abs(t["score"] - 0.5) > atol:  # two labels: one no rounding of that precision can flip
            assert o["label"] == t["label"]


# -- threads ---------------------------------------------------------------------------------------

def test_thread_defaults_share_the_cores_among_local_processes(monkeypatch):
    from attnlab import runtime

    cores = runtime.physical_cores()
    assert cores >= 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert runtime.default_num_threads() == max(1, cores // 2)
    before = torch.get_num_threads()
    try:
        assert runtime.set_num_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun's own default: replaced by the fair share
        assert runtime.set_num_threads(None) == max(1, cores // 2)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # one process: torch's setting is kept
        torch.set_num_threads(1)
        assert runtime.set_num_threads(None) == 1
    finally:
        torch.set_num_threads(before)


# -- training flags --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [{"optim": "sgd-but-fast"}, {"pad_to_multiple_of": 0}, {"pad_to_multiple_of": 2.5},
                                 {"torch_compile": "yes"}])
def test_speed_settings_are_validated(bad):
    from attnlab.training import TrainConfig

    with pytest.raises(UserError):
        TrainConfig.from_sources(None, **bad)


def test_speed_settings_reach_the_trainer(sst2_dir, tmp_path):
    from transformers import TrainerCallback

    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    seen = {}

    class Spy(TrainerCallback):  # records the arguments and the batch shapes
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["optim"], seen["compile"] = getattr(args.optim, "value", args.optim), args.torch_compile
            model.register_forward_pre_hook(
                lambda m, a, k: seen.setdefault("widths", []).append(k["input_ids"].shape[1]) if m.training else None,
                with_kwargs=True)

    cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), method="lora", max_train_samples=16,
                                   max_eval_samples=8, max_steps=2, batch_size=8, optim="adamw_torch",
                                   pad_to_multiple_of=8, num_threads=1, output_dir=str(tmp_path / "run"))
    before = torch.get_num_threads()
    try:
        run = train(cfg, progress=False, callbacks=[Spy()])
    finally:
        torch.set_num_threads(before)
    assert seen["optim"] == "adamw_torch" and seen["compile"] is False
    assert seen["widths"] and all(w % 8 == 0 for w in seen["widths"])
    assert run.config["optim"] == "adamw_torch" and run.config["pad_to_multiple_of"] == 8


def test_train_cli_flags_for_speed():
    import argparse

    from attnlab.cli import add_train_args, config_from_args

    p = argparse.ArgumentParser()
    add_train_args(p)
    cfg = config_from_args(p.parse_args(["--torch-compile", "--optim", "adamw_torch", "--pad-to-multiple-of", "8"]))
    assert (cfg.torch_compile, cfg.optim, cfg.pad_to_multiple_of) == (True, "adamw_torch", 8)
    cfg = config_from_args(p.parse_args([]))
    assert (cfg.torch_compile, cfg.optim, cfg.pad_to_multiple_of) == (False, None, None)


# -- the benchmark scripts' arithmetic ------------------------------------------------------------

def test_train_speed_counts_flops_and_time_to_accuracy():
    ts = _bench("train_speed")
    evals = [{"accuracy": 0.6, "train_seconds": 1.0}, {"accuracy": 0.81, "train_seconds": 2.0},
             {"accuracy": 0.79, "train_seconds": 3.0}]
    assert ts.time_to(evals, 0.8) == 2.0 and ts.time_to(evals, 0.9) is None
    # one batch of 2 x 4 tokens: 6 N per padded token plus attention 12 L B T^2 d
    assert ts.step_flops([(5, 8, 2, 4)], 6.0 * 100, layers=2, hidden=3) == 6 * 100 * 8 + 12 * 2 * 2 * 16 * 3
    shape = {"non_embedding_params": 1000, "head_params": 10, "layers": 2, "hidden": 3}
    assert ts.dense_flops_per_token("full", shape, None) == 6000
    assert ts.dense_flops_per_token("lora", shape, 50) == 4 * 990 + 6 * 50
    emb = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2))
    assert ts.non_embedding_params(emb) == 4 * 2 + 2


def test_gemm_peaks_are_measured_at_the_square_and_the_model_shapes(monkeypatch):
    peaks = _bench("_peaks")
    monkeypatch.setattr(peaks, "SQUARE", 128)
    monkeypatch.setattr(peaks, "TOKEN_COUNTS", (16, 32))
    out = peaks.peaks("fp32", hidden=8, intermediate=24, seconds=0.01)
    assert out["native"] and out["square"]["n"] == 128 and out["square"]["flops_per_second"] > 0
    assert set(out["model_shapes"]["each"]) == {"16x8@8x24", "32x8@8x24", "16x24@24x8", "32x24@24x8"}
    assert out["model_shapes"]["flops_per_second"] == max(out["model_shapes"]["each"].values())


def test_infer_speed_helpers():
    inf = _bench("infer_speed")
    assert inf.percentile_ms([0.001, 0.002, 0.003], 50) == pytest.approx(2.0)


def test_lora_step_frozen_floor_backpropagates_to_the_first_layer():
    """benchmarks/lora_step.py's floor: no adapters, only the head trains, yet the gradient reaches
    the embedding output (as LoRA's must), and no frozen weight gets a gradient."""
    mod = _bench("lora_step")
    model, _, trainable = mod.build("frozen floor", "minilm-l6")
    assert trainable == 2 * 384 + 2  # the classifier only
    outs: list[torch.Tensor] = []

    def keep(module, args, out) -> None:  # returns None: the output stays as it is
        out.retain_grad()
        outs.append(out)

    model.get_input_embeddings().register_forward_hook(keep)
    model(input_ids=torch.tensor([[101, 2023, 2003, 102]]), labels=torch.tensor([1])).loss.backward()
    assert outs[0].grad is not None and float(outs[0].grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    _, _, lora = mod.build("lora", "minilm-l6")
    _, _, attn = mod.build("lora, attention only", "minilm-l6")
    assert trainable < attn < lora


def test_speed_docs_snippets_are_up_to_date():
    """docs/speed.md's tables come from the benchmark JSON through docs/gen/speed.py."""
    mod = load_script(REPO / "docs" / "gen" / "speed.py", "docs_gen_speed")
    stale = [str(path.relative_to(REPO)) for path, text in mod.render().items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"out of date: {stale}; run: python docs/gen/speed.py"
    page = (REPO / "docs" / "speed.md").read_text(encoding="utf-8")
    for path in mod.render():
        assert f'--8<-- "gen/{path.name}"' in page


def test_peak_shares_are_not_applicable_for_an_emulated_precision(monkeypatch):
    """A share of the bf16 peak is None where the CPU emulates bf16 (never a 'met' target), and a real
    ratio where the precision is native."""
    peaks = _bench("_peaks")
    assert peaks.native("fp32")
    assert peaks.matmul_rate(64, 32, 48, "fp32", seconds=0.01) > 0
    fake = {"native": True, "square": {"flops_per_second": 4e11}, "model_shapes": {"flops_per_second": 2e11}}
    assert peaks.share_of_peak(1e11, fake) == {"of_square_peak": 0.25, "of_model_shape_peak": 0.5}
    assert peaks.share_of_peak(1e11, fake | {"native": False}) == {"of_square_peak": None,
                                                                   "of_model_shape_peak": None}
    monkeypatch.setattr("attnlab.runtime.cpu_flags", lambda: frozenset({"avx2", "fma"}))
    if not torch.cuda.is_available():
        assert not peaks.native("bf16")


def test_lora_step_dropout_off_variants_turn_every_dropout_off():
    mod = _bench("lora_step")
    model, _, _ = mod.build("lora, dropout off", "minilm-l6")
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(p == 0.0 for p in drops)
    model, _, _ = mod.build("full", "minilm-l6")
    assert any(m.p > 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_train_speed_builds_attnlabs_default_recipe(tmp_path):
    """Without --attnlab-epochs the benchmark trains attnlab's own default number of epochs (a None
    passed on as a setting would be refused: unset and disabled are different)."""
    import argparse

    from attnlab.training import TrainConfig

    ts = _bench("train_speed")
    a = argparse.Namespace(data_dir=str(tmp_path), model="minilm-l6", attnlab_epochs=None, seed=1, train_rows=10,
                           eval_rows=None, max_length=64)
    assert ts.attnlab_cfg(a, "lora", tmp_path / "r").epochs == TrainConfig().epochs
    given = argparse.Namespace(**{**vars(a), "attnlab_epochs": 1.5})
    assert ts.attnlab_cfg(given, "full", tmp_path / "r").epochs == 1.5
