"""Distillation (``attnlab train --teacher RUN``): the loss is Hinton et al.'s, alpha 0 is plain
cross-entropy, the teacher's logits are computed once, cached and reused, each training row carries
its own teacher logits through length-grouped batching, a bad teacher is one line, and full and
LoRA students train and record where they learnt from. The teacher is a tiny random BERT run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import run_cli

STUDENT = dict(data="sst2", max_train_samples=16, max_eval_samples=8, max_steps=2, batch_size=8, lora_r=2,
               num_threads=1, logging_steps=1)  # tiny_bert_runs' data: the teacher's labels and texts


@pytest.fixture
def teacher(tmp_path, tiny_bert_runs) -> Path:
    """A copy of the tiny full run (its cache folder starts empty, and the shared fixture stays as it was)."""
    return Path(shutil.copytree(tiny_bert_runs["full"], tmp_path / "teacher"))


def student_config(tmp_path: Path, tiny_bert: Path, sst2_dir: Path, name: str, **settings):
    from attnlab.training import TrainConfig

    return TrainConfig.from_sources(None, **(STUDENT | {"data_dir": str(sst2_dir), "model": str(tiny_bert),
                                                        "output_dir": str(tmp_path / name)} | settings))


@pytest.fixture
def count_teacher_runs(monkeypatch) -> list[int]:
    """How many texts each real run of the teacher scored (one entry per run)."""
    from attnlab.training import distill

    calls: list[int] = []
    real = distill.predict_logits

    def counted(teacher, texts, **kwargs):
        calls.append(len(texts))
        return real(teacher, texts, **kwargs)

    monkeypatch.setattr(distill, "predict_logits", counted)
    return calls


# -- the loss --------------------------------------------------------------------------------------

def test_loss_is_hintons_on_a_toy_batch():
    from attnlab.training.distill import distillation_loss

    student = torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]])
    teacher = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, -2.0]])
    labels = torch.tensor([1, 0, 1])
    T, alpha = 2.0, 0.3

    def softmax(z):
        e = [math.exp(v) for v in z]
        return [v / sum(e) for v in e]

    want = 0.0
    for s, t, y in zip(student.tolist(), teacher.tolist(), labels.tolist(), strict=True):
        p_t, p_s = softmax([v / T for v in t]), softmax([v / T for v in s])
        kl = sum(a * math.log(a / b) for a, b in zip(p_t, p_s, strict=True))
        ce = -math.log(softmax(s)[y])
        want += alpha * T * T * kl + (1 - alpha) * ce
    got = distillation_loss(student, labels, teacher, temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(want / 3, rel=1e-6)
    # Trainer's count of the rows of all accumulated batches: a sum over them, not a mean
    summed = distillation_loss(student, labels, teacher, temperature=T, alpha=alpha, num_items_in_batch=6)
    assert summed.item() == pytest.approx(want / 6, rel=1e-6)
    # a teacher that agrees with the student leaves only the labels' part
    same = distillation_loss(student, labels, student, temperature=T, alpha=alpha)
    ce = torch.nn.functional.cross_entropy(student, labels)
    assert same.item() == pytest.approx((1 - alpha) * ce.item(), rel=1e-6)


def test_alpha_zero_is_the_models_own_cross_entropy(tiny_bert, tmp_path):
    """DistillTrainer at alpha 0 gives the loss plain Trainer gives (the model's own), teacher or not."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from attnlab.training.distill import TEACHER_COLUMN, DistillTrainer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    batch = dict(tok(["a fine film", "a dull, tired and long film"], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0])
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    plain = Trainer(model=model, args=args)
    student = DistillTrainer(model=model, args=args, temperature=3.0, alpha=0.0)
    for n in (None, 2):  # without Trainer's count of the batch's rows, and with it (no accumulation)
        want = plain.compute_loss(model, dict(batch), num_items_in_batch=n)
        teacher = torch.tensor([[5.0, -5.0], [-1.0, 2.0]])
        got = student.compute_loss(model, dict(batch, **{TEACHER_COLUMN: teacher}), num_items_in_batch=n)
        assert got.item() == pytest.approx(want.item(), rel=1e-6)
        assert student.compute_loss(model, dict(batch), num_items_in_batch=n).item() == pytest.approx(want.item())


def test_alpha_zero_trains_as_plain_training(teacher, tiny_bert, sst2_dir, tmp_path):
    from attnlab.training.train import train

    def losses(run) -> list[float]:
        history = map(json.loads, (run.path / "history.jsonl").read_text().splitlines())
        return [h["loss"] for h in history if "loss" in h]

    plain = train(student_config(tmp_path, tiny_bert, sst2_dir, "plain", method="full"), progress=False)
    distilled = train(student_config(tmp_path, tiny_bert, sst2_dir, "alpha0", method="full", teacher=str(teacher),
                                     distill_alpha=0.0), progress=False)
    assert len(losses(plain)) == 2
    assert losses(distilled) == pytest.approx(losses(plain), rel=1e-5)


# -- the teacher's logits --------------------------------------------------------------------------

def test_teacher_logits_are_computed_once_and_reused(teacher, count_teacher_runs):
    import attnlab
    from attnlab.rundir import open_run
    from attnlab.training.distill import CACHE_FOLDER, teacher_logits

    texts = ["a warm and lovely film", "dull", "it was fine, I suppose, in the end"]
    first, path, reused = teacher_logits(open_run(teacher), texts, batch_size=2)
    assert not reused and count_teacher_runs == [3]
    assert path.parent == teacher / CACHE_FOLDER and path.is_file() and first.shape == (3, 2)
    again, path2, reused = teacher_logits(open_run(teacher), texts, batch_size=2)
    assert reused and path2 == path and count_teacher_runs == [3]  # read, not recomputed
    np.testing.assert_array_equal(again, first)
    # they are the teacher's logits: softmax gives what `attnlab.load(run)` predicts
    probs = attnlab.load(str(teacher)).predict_proba(texts)
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(first), -1).numpy(), probs, atol=1e-5)
    # other texts are another file
    _, other, reused = teacher_logits(open_run(teacher), texts[:2], batch_size=2)
    assert not reused and other != path and count_teacher_runs == [3, 2]


def test_every_row_keeps_its_own_teacher_logits(teacher, tiny_bert, sst2_dir, tmp_path, monkeypatch):
    """A teacher whose logits are a known function of the text (its token count and the sum of its token
    ids): every batch, grouped by length and shuffled, holds each row's own."""
    from transformers import AutoTokenizer

    from attnlab.training import distill
    from attnlab.training.train import train

    tok = AutoTokenizer.from_pretrained(tiny_bert)

    def known(run, texts, **kwargs):
        ids = tok(texts, truncation=True, max_length=128)["input_ids"]
        return np.array([[len(row), sum(row)] for row in ids], dtype=np.float32)

    monkeypatch.setattr(distill, "predict_logits", known)
    batches = []
    collate = distill.TeacherCollator.__call__

    def seen(self, features):
        batch = collate(self, features)
        if distill.TEACHER_COLUMN in batch:
            batches.append(batch)
        return batch

    monkeypatch.setattr(distill.TeacherCollator, "__call__", seen)
    cfg = student_config(tmp_path, tiny_bert, sst2_dir, "aligned", teacher=str(teacher), max_train_samples=32,
                         batch_size=4, max_steps=8, group_by_length=True)
    train(cfg, progress=False)
    assert len(batches) == 8
    for batch in batches:
        mask, ids = batch["attention_mask"], batch["input_ids"]
        want = torch.stack([mask.sum(1), (ids * mask).sum(1)], dim=1).float()
        torch.testing.assert_close(batch[distill.TEACHER_COLUMN], want, rtol=0, atol=0)


# -- bad teachers ----------------------------------------------------------------------------------

def _one_line_error(capsys, argv) -> str:
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_bad_teacher_is_one_line(teacher, tiny_bert, sst2_dir, tmp_path, capsys):
    base = ["train", "--data", "sst2", "--data-dir", str(sst2_dir), "--model", str(tiny_bert),
            "--max-train-samples", "16", "--max-eval-samples", "8", "--max-steps", "1", "-o", str(tmp_path / "s")]
    missing = _one_line_error(capsys, [*base, "--teacher", str(tmp_path / "nowhere")])
    assert "teacher run not found" in missing and "--teacher" in missing
    (tmp_path / "half" / "checkpoints").mkdir(parents=True)
    assert "teacher: not a finished attnlab run" in _one_line_error(
        capsys, [*base, "--teacher", str(tmp_path / "half")])
    assert "the run being written" in _one_line_error(capsys, [*base[:-1], str(teacher), "--teacher", str(teacher)])

    regression = Path(shutil.copytree(teacher, tmp_path / "regression"))
    config = yaml.safe_load((regression / "config.yaml").read_text())
    (regression / "config.yaml").write_text(yaml.safe_dump(config | {"task": "regression"}))
    assert "a regression run, not a classifier" in _one_line_error(capsys, [*base, "--teacher", str(regression)])

    other = Path(shutil.copytree(teacher, tmp_path / "other-labels"))
    (other / "labels.json").write_text(json.dumps({"labels": ["ham", "spam"], "label2id": {"ham": 0, "spam": 1}}))
    line = _one_line_error(capsys, [*base, "--teacher", str(other)])
    assert "the teacher's labels (ham, spam) are not the data's" in line
    assert not (tmp_path / "s").exists()  # refused before the output folder was started

    assert "--task" in _one_line_error(capsys, [*base, "--teacher", str(teacher), "--task", "regression"])
    assert "distill_alpha" in _one_line_error(capsys, [*base, "--teacher", str(teacher), "--distill-alpha", "1.5"])
    assert "distill_temperature" in _one_line_error(capsys, [*base, "--distill-temperature", "0"])


# -- students --------------------------------------------------------------------------------------

def test_full_and_lora_students_train_and_record_their_teacher(teacher, tiny_bert, sst2_dir, tmp_path,
                                                               count_teacher_runs):
    from attnlab.rundir import open_run
    from attnlab.training.train import train

    teacher_metrics = json.loads((teacher / "metrics.json").read_text())
    for i, method in enumerate(("full", "lora")):
        cfg = student_config(tmp_path, tiny_bert, sst2_dir, method, method=method, teacher=str(teacher),
                             distill_temperature=3.0, distill_alpha=0.7)
        run = train(cfg, progress=False)
        d = run.metrics["distillation"]
        assert d["teacher"] == str(teacher.resolve()) and d["teacher_method"] == "full"
        assert d["teacher_model"] == str(tiny_bert)
        assert d["teacher_validation_accuracy"] == teacher_metrics["validation"]["accuracy"]
        assert (d["temperature"], d["alpha"]) == (3.0, 0.7)
        assert d["teacher_logits_reused"] is (i == 1) and Path(d["teacher_logits"]).is_file()
        config = yaml.safe_load((run.path / "config.yaml").read_text())
        assert (config["teacher"], config["distill_temperature"], config["distill_alpha"]) == (str(teacher), 3.0, 0.7)
        assert math.isfinite(run.metrics["validation"]["loss"]) and 0 <= run.metrics["test"]["accuracy"] <= 1
        assert open_run(run.path).is_adapter is (method == "lora")
    assert count_teacher_runs == [16]  # the teacher read the 16 training texts once, for both students


@pytest.fixture
def word_level_model(tmp_path, sst2_dir) -> Path:
    """A random 2-layer BERT with a word-level tokenizer of its own (not the students' WordPiece one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    lines = (sst2_dir / "train.tsv").read_text(encoding="utf-8").splitlines()[1:3000]
    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator((line.split("\t")[0] for line in lines),
                              trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    words.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                         special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", model_max_length=128)
    folder = tmp_path / "word-level-bert"
    BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=64, pad_token_id=0)
                                  ).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.train
def test_a_teacher_with_another_model_and_tokenizer_teaches(word_level_model, tiny_bert, sst2_dir, tmp_path):
    """The teacher reads the texts with its own tokenizer and model: the student's column holds exactly
    the logits whose softmax `attnlab.load(teacher)` predicts."""
    import attnlab
    from attnlab.training.build import build, check
    from attnlab.training.distill import TEACHER_COLUMN
    from attnlab.training.train import train

    teacher = train(student_config(tmp_path, word_level_model, sst2_dir, "word-teacher", method="lora"),
                    progress=False).path
    cfg = student_config(tmp_path, tiny_bert, sst2_dir, "student", method="full", teacher=str(teacher))
    setup = build(cfg, *check(cfg))
    texts = list(setup.data.splits["train"]["text"])
    logits = torch.tensor(setup.encoded["train"][TEACHER_COLUMN])
    probs = attnlab.load(str(teacher)).predict_proba(texts)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), probs, atol=1e-5)
    assert setup.distillation.record()["teacher_method"] == "lora"
    run = train(cfg, progress=False)
    assert run.metrics["distillation"]["teacher_logits_reused"] is True


def test_teacher_columns_follow_the_students_label_order(teacher, tiny_bert, sst2_dir, tmp_path):
    """A teacher whose labels.json lists the same labels in another order: its columns are reordered."""
    import attnlab
    from attnlab.training.build import build, check
    from attnlab.training.distill import TEACHER_COLUMN

    doc = json.loads((teacher / "labels.json").read_text())
    swapped = doc["labels"][::-1]
    (teacher / "labels.json").write_text(json.dumps(doc | {"labels": swapped,
                                                          "label2id": {n: i for i, n in enumerate(swapped)}}))
    cfg = student_config(tmp_path, tiny_bert, sst2_dir, "student", teacher=str(teacher))
    setup = build(cfg, *check(cfg))
    assert setup.labels == swapped[::-1]
    logits = torch.tensor(setup.encoded["train"][TEACHER_COLUMN])
    probs = attnlab.load(str(teacher)).predict_proba(list(setup.data.splits["train"]["text"]))
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), probs[:, ::-1], atol=1e-5)
