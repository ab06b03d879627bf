"""Bad input, systematically: data files, recipes, CLI flags, run directories and REST request bodies.

The cases, and what each error must say, are listed once in ``docs/gen/bad_input_cases.toml`` (which
docs/reliability.md also lists, through ``docs/gen/reliability.py``); this file builds each case's input.
Every CLI case must end the same way: exit code 2, exactly one line on stderr that starts with
``error:`` (what, where, how to fix), no traceback, and nothing written or changed on disk. Most cases
call ``attnlab.cli.main`` in-process (fast); the ones marked ``subprocess`` run the real
``python -m attnlab.cli`` to prove the same holds for a fresh process. A few inputs that look odd but
are fine (UTF-8 BOM, CRLF, quoted fields, very long texts) must work.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli
from scripts import REPO, load_script

SPEC = tomllib.loads((REPO / "docs" / "gen" / "bad_input_cases.toml").read_text(encoding="utf-8"))

# -- harness --------------------------------------------------------------------------------------


@dataclass
class Ctx:
    tmp: Path
    tiny_bert: Path
    runs: dict[str, Path]
    sst2: Path
    request: pytest.FixtureRequest

    @property
    def out(self) -> str:
        return str(self.tmp / "out")

    def file(self, name: str, content: str | bytes, encoding: str = "utf-8") -> str:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return str(p)

    def run(self, method: str = "full") -> Path:
        """A private copy of a finished tiny run, to break."""
        dst = self.tmp / f"run-{method}"
        if not dst.exists():
            shutil.copytree(self.runs[method], dst)
        return dst

    def resume(self, method: str, edit: Callable[[Path], None]) -> list[str]:
        """``train --resume`` on a private copy of an unfinished run whose last checkpoint ``edit`` breaks."""
        dst = self.tmp / f"unfinished-{method}"
        shutil.copytree(self.request.getfixturevalue("unfinished_runs")[method], dst)
        edit(dst / "checkpoints" / "checkpoint-2")
        return ["train", "-o", str(dst), "--resume", *RESUMABLE, "--model", str(self.tiny_bert), "--method", method,
                "--data-dir", str(self.sst2)]

    def train(self, data: str, *extra: str) -> list[str]:  # tiny settings, in case a case wrongly trains
        return ["train", "-o", self.out, "--data", data, "--model", str(self.tiny_bert), "--max-steps", "1",
                "--max-eval-samples", "4", "--no-progress", *extra]

    def recipe(self, yaml_text: str) -> list[str]:
        tiny = f"data: sst2\ndata_dir: {self.sst2}\nmax_train_samples: 8\nmax_eval_samples: 4\nmax_steps: 1\n"
        return ["train", "-o", self.out, "--config", self.file("recipe.yaml", tiny + yaml_text), "--model",
                str(self.tiny_bert), "--no-progress"]


@dataclass(frozen=True)
class Case:
    """A case of ``[[cli]]`` in docs/gen/bad_input_cases.toml, with the command that feeds it to the CLI."""

    id: str
    input: str  # the kind of input it breaks
    error: str  # must appear in the error line (case-insensitive)
    argv: Callable[[Ctx], list[str]]
    subprocess: bool = False


def rows(n: int = 12, text: str = "film {i} was {w}") -> str:
    return "".join(f"{text.format(i=i, w='good' if i % 2 else 'bad')},{'pos' if i % 2 else 'neg'}\n" for i in range(n))


GOOD = "text,label\n" + rows()


def folder(c: Ctx, **splits: str) -> str:
    for split, text in splits.items():
        c.file(f"dir/{split}.csv", text)
    return str(c.tmp / "dir")


def _truncate(path: Path, keep: int = 100) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def truncated_weights(method: str) -> Callable[[Ctx], list[str]]:
    def argv(c: Ctx) -> list[str]:
        run = c.run(method)
        name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
        _truncate(run / "model" / name)
        return ["predict", str(run), "a fine film"]

    return argv


def edit_run(method: str, edit: Callable[[Path], None], command: str = "predict") -> Callable[[Ctx], list[str]]:
    def argv(c: Ctx) -> list[str]:
        run = c.run(method)
        edit(run)
        if command == "predict":
            return ["predict", str(run), "a fine film"]
        if command == "evaluate":
            return ["evaluate", str(run), "--data", c.file("eval.csv", GOOD)]
        return ["merge", str(run), str(c.tmp / "merged")]

    return argv


def _labels(n: int) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        names = [f"class{i}" for i in range(n)]
        (run / "labels.json").write_text(json.dumps({"labels": names, "label2id": {k: i for i, k in enumerate(names)}}))

    return edit


def _only_bin(run: Path) -> None:
    import torch
    from safetensors.torch import load_file

    st = run / "model" / "model.safetensors"
    torch.save(load_file(st), run / "model" / "pytorch_model.bin")
    st.unlink()


RESUMABLE = ["--data", "sst2", "--max-train-samples", "16", "--max-eval-samples", "8", "--max-steps", "2",
             "--batch-size", "8", "--lora-r", "2", "--num-threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def unfinished_runs(tmp_path_factory, tiny_bert, sst2_dir) -> dict[str, Path]:
    """Full and LoRA runs of ``tiny_bert`` cut short after their checkpoint at step 2 (no metrics.json)."""
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("unfinished")
    for method in ("full", "lora"):
        argv = ["train", "-o", str(root / method), *RESUMABLE, "--model", str(tiny_bert), "--method", method,
                "--data-dir", str(sst2_dir), "--keep-checkpoints"]
        assert main(argv) == 0
        (root / method / "metrics.json").unlink()
    return {m: root / m for m in ("full", "lora")}


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x80\x04 garbage, not a pickle")


def _foreign_pickle(path: Path) -> None:  # code, not data: a weights-only load refuses it
    import pickle

    path.write_bytes(pickle.dumps(shutil.rmtree))


def _bytes_parquet(c: Ctx) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = c.tmp / "d.parquet"
    c.tmp.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": [b"\xff\xfe film %d" % i for i in range(12)],
                             "label": ["pos" if i % 2 else "neg" for i in range(12)]}), path)
    return str(path)


def predict(method: str = "full", *texts: str, edit: Callable[[Path], None] | None = None,
            command: str = "predict") -> Callable[[Ctx], list[str]]:
    def argv(c: Ctx) -> list[str]:
        run = c.run(method)
        if edit:
            edit(run)
        if command == "serve":
            return ["serve", "--run", str(run), "--no-ui", "--no-chat"]
        return ["predict", str(run), *(texts or ("a fine film",))]

    return argv


def flag(*args: str) -> Callable[[Ctx], list[str]]:
    """A tiny LoRA training with one bad number: each must be refused before anything loads."""
    return lambda c: c.train(c.file("d.csv", GOOD), "--method", "lora", *args)


def write(name: str, text: str) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(text)


def labelled(c: Ctx) -> str:  # evaluation data in the tiny runs' own labels
    return c.file("e.csv", "text,label\n" + "".join(f"film {i},{'positive' if i % 2 else 'negative'}\n"
                                                    for i in range(8)))


INPUTS: dict[str, Callable[[Ctx], list[str]]] = {  # case id -> the command that feeds it to the CLI
    # -- data files ------------------------------------------------------------------------------
    "latin-1": lambda c: c.train(c.file("d.csv", "text,label\ncafé crème,pos\n" + rows(), "latin-1")),
    "utf-16-bom": lambda c: c.train(c.file("d.csv", GOOD, "utf-16")),
    "binary-garbage": lambda c: c.train(c.file("d.csv", bytes(range(256)) * 40)),
    "empty-file": lambda c: c.train(c.file("d.csv", "")),
    "header-only": lambda c: c.train(c.file("d.csv", "text,label\n")),
    "unclosed-quote": lambda c: c.train(c.file("d.csv", 'text,label\n"an unclosed quote,pos\n' + rows())),
    "extra-field-in-row": lambda c: c.train(c.file("d.csv", "text,label\n" + rows() + "a,b,c\n")),
    # no column named like one, and none that holds free text (one word each) / few distinct values (all distinct)
    "no-text-column": lambda c: c.train(c.file("d.csv", "words,label\n" + rows(text="film{i}"))),
    "no-label-column": lambda c: c.train(c.file("d.csv", "text,stars\n" + "".join(
        f"film {i} was good,{i}\n" for i in range(12)))),
    "missing-label-cells": lambda c: c.train(c.file("d.csv", GOOD + "a film,\n")),
    "null-labels-jsonl": lambda c: c.train(c.file("d.jsonl", "".join(
        json.dumps({"text": f"t{i}", "label": None if i == 3 else i % 2}) + "\n" for i in range(12)))),
    "one-class": lambda c: c.train(c.file("d.csv", "text,label\n" + "".join(f"t{i},pos\n" for i in range(12)))),
    "all-texts-empty": lambda c: c.train(c.file("d.csv", "text,label\n" + "".join(
        f" ,{'pos' if i % 2 else 'neg'}\n" for i in range(12)))),
    "all-texts-zero-width": lambda c: c.train(c.file("d.jsonl", "".join(
        json.dumps({"text": "\u200b\u200d", "label": i % 2}) + "\n" for i in range(12)))),
    "all-texts-nul": lambda c: c.train(c.file("d.jsonl", "".join(
        json.dumps({"text": "\u0000\u0000", "label": i % 2}) + "\n" for i in range(12)))),
    "unknown-suffix": lambda c: c.train(c.file("d.xlsx", GOOD)),
    "broken-jsonl": lambda c: c.train(c.file("d.jsonl", '{"text": "a", "label": 1}\n{"text": \n')),
    "json-not-a-table": lambda c: c.train(c.file("d.json", '"just a string"')),
    "garbage-parquet": lambda c: c.train(c.file("d.parquet", b"PAR1 not really parquet")),
    "folder-without-train": lambda c: c.train(folder(c, validation=GOOD)),
    "split-with-unseen-label": lambda c: c.train(folder(c, train=GOOD, test=GOOD + "meh,neutral\n")),
    "text-column-flag-missing": lambda c: c.train(c.file("d.csv", GOOD), "--text-column", "review"),
    "missing-data-file": lambda c: c.train(str(c.tmp / "nope.csv")),
    "jsonl-bad-line-number": lambda c: c.train(c.file("d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", '
                                                                 '"label": 0}\nnot json\n')),
    "parquet-bytes-column": lambda c: c.train(_bytes_parquet(c)),
    # -- recipes (--config) ---------------------------------------------------------------------
    "recipe-unknown-key": lambda c: c.recipe("epochs: 1\nlearning_rat: 0.1\n"),
    "recipe-wrong-type-int": lambda c: c.recipe("batch_size: big\n"),
    "recipe-wrong-type-float": lambda c: c.recipe("epochs: three\n"),
    "recipe-eval-steps-string": lambda c: c.recipe("eval_every_steps: often\n"),
    "recipe-samples-string": lambda c: c.recipe("max_train_samples: lots\n"),
    "recipe-patience-float": lambda c: c.recipe("early_stopping_patience: 1.5\n"),
    "recipe-negative-lr": lambda c: c.recipe("learning_rate: -0.001\n"),
    "recipe-huge-max-length": lambda c: c.recipe("max_length: 100000\n"),
    "recipe-negative-seed": lambda c: c.recipe("seed: -1\n"),
    "recipe-unknown-scheduler": lambda c: c.recipe("lr_scheduler: zigzag\n"),
    "recipe-data-not-a-string": lambda c: c.recipe("data: 42\n"),
    "recipe-lora-targets-int": lambda c: c.recipe("lora_targets: 5\n"),
    "recipe-unknown-method": lambda c: c.recipe("method: prefix\n"),
    "recipe-bad-yaml": lambda c: c.recipe("epochs: [1,\n"),
    "recipe-not-a-mapping": lambda c: ["train", "-o", c.out, "--config", c.file("r.yaml", "- epochs\n- 1\n")],
    "recipe-missing": lambda c: ["train", "-o", c.out, "--config", str(c.tmp / "nope.yaml")],
    "recipe-inf-epochs": lambda c: c.recipe("epochs: .inf\n"),
    "recipe-nan-lr": lambda c: c.recipe("learning_rate: .nan\n"),
    "recipe-bool-batch-size": lambda c: c.recipe("batch_size: true\n"),
    "recipe-python-tag": lambda c: c.recipe("epochs: !!python/object/apply:os.system ['touch pwned']\n"),
    "recipe-mapping-value": lambda c: c.recipe("lr_scheduler: {a: 1}\n"),
    "recipe-list-value": lambda c: c.recipe("epochs: [1, 2]\n"),
    "recipe-binary": lambda c: ["train", "-o", c.out, "--config", c.file("r.yaml", bytes(range(256)))],
    "recipe-a-folder": lambda c: ["train", "-o", c.out, "--config", str(Path(c.file("conf/x", "x")).parent)],
    # -- CLI flags ------------------------------------------------------------------------------
    "flag-not-a-number": lambda c: ["train", "-o", c.out, "--epochs", "abc"],
    "flag-zero-batch": lambda c: ["train", "-o", c.out, "--batch-size", "0"],
    "flag-int-expected": lambda c: ["train", "-o", c.out, "--max-steps", "1.5"],
    "flag-nan-lr": lambda c: ["train", "-o", c.out, "--lr", "nan"],
    "flag-negative-epochs": lambda c: ["train", "-o", c.out, "--epochs", "-1"],
    "flag-bad-fraction": lambda c: c.train(c.file("d.csv", GOOD), "--val-fraction", "0.9"),
    "flag-unknown-method": lambda c: ["train", "-o", c.out, "--method", "prefix"],
    "flag-unknown-model": lambda c: ["train", "-o", c.out, "--model", "no/such/model/id"],
    "flag-missing-model-folder": lambda c: ["train", "-o", c.out, "--model", str(c.tmp / "nope")],
    "flag-unknown-data": lambda c: ["train", "-o", c.out, "--data", "imdb-please"],
    "flag-missing-required": lambda c: ["train", "--epochs", "1"],
    "flag-unknown-flag": lambda c: ["predict", str(c.tmp), "x", "--bogus"],
    "flag-unknown-command": lambda c: ["frobnicate"],
    "flag-bad-choice": lambda c: ["evaluate", str(c.tmp), "--split", "dev"],
    "sst2-folder-without-train": lambda c: c.train("sst2", "--data-dir", str(c.tmp)),
    "flag-inf-lr": flag("--lr", "inf"),
    "flag-zero-lr": flag("--lr", "0"),
    "flag-huge-lr": flag("--lr", "1e308"),
    "flag-nan-epochs": flag("--epochs", "nan"),
    "flag-inf-epochs": flag("--epochs", "inf"),
    "flag-negative-batch": flag("--batch-size", "-1"),
    "flag-zero-eval-batch": flag("--eval-batch-size", "0"),
    "flag-zero-max-length": flag("--max-length", "0"),
    "flag-negative-max-length": flag("--max-length", "-5"),
    "flag-zero-grad-accum": flag("--gradient-accumulation-steps", "0"),
    "flag-negative-weight-decay": flag("--weight-decay", "-1"),
    "flag-nan-weight-decay": flag("--weight-decay", "nan"),
    "flag-negative-warmup": flag("--warmup-ratio", "-0.1"),
    "flag-warmup-above-one": flag("--warmup-ratio", "2"),
    "flag-inf-warmup": flag("--warmup-ratio", "inf"),
    "flag-huge-seed": flag("--seed", "99999999999999999999"),
    "flag-zero-patience": flag("--early-stopping-patience", "0"),
    "flag-negative-eval-steps": flag("--eval-every-steps", "-4"),
    "flag-zero-lora-r": flag("--lora-r", "0"),
    "flag-huge-lora-r": flag("--lora-r", "100000000000"),
    "flag-huge-epochs": flag("--epochs", "1e300"),
    "flag-huge-threads": flag("--num-threads", "100000"),
    "flag-nan-lora-alpha": flag("--lora-alpha", "nan"),
    "flag-negative-lora-alpha": flag("--lora-alpha", "-8"),
    "flag-lora-dropout-above-one": flag("--lora-dropout", "1.5"),
    "flag-nan-lora-dropout": flag("--lora-dropout", "nan"),
    "flag-zero-logging-steps": flag("--logging-steps", "0"),
    "flag-zero-threads": flag("--num-threads", "0"),
    "flag-negative-pad-multiple": flag("--pad-to-multiple-of", "-8"),
    "flag-zero-max-train-samples": flag("--max-train-samples", "0"),
    "flag-negative-max-eval-samples": flag("--max-eval-samples", "-3"),
    "flag-nan-val-fraction": flag("--val-fraction", "nan"),
    "flag-test-fraction-one": flag("--test-fraction", "1"),
    "flag-inf-test-fraction": flag("--test-fraction", "inf"),
    "predict-zero-batch": lambda c: ["predict", str(c.run()), "a film", "--batch-size", "0"],
    "predict-negative-batch": lambda c: ["predict", str(c.run()), "a film", "--batch-size", "-3"],
    "serve-port-70000": lambda c: ["serve", "--run", str(c.run()), "--port", "70000"],
    "serve-port-zero": lambda c: ["serve", "--run", str(c.run()), "--port", "0"],
    "serve-port-negative": lambda c: ["serve", "--run", str(c.run()), "--port", "-1"],
    "serve-port-not-a-number": lambda c: ["serve", "--run", str(c.run()), "--port", "http"],
    "serve-zero-threads": lambda c: ["serve", "--run", str(c.run()), "--num-threads", "0"],
    "serve-huge-threads": lambda c: ["serve", "--run", str(c.run()), "--num-threads", "100000"],
    # -- run directories ------------------------------------------------------------------------
    "run-missing": lambda c: ["predict", str(c.tmp / "no-run"), "hi"],
    "run-without-metrics": edit_run("full", lambda r: (r / "metrics.json").unlink()),
    "run-without-model": edit_run("full", lambda r: shutil.rmtree(r / "model")),
    "run-metrics-invalid-json": edit_run("full", lambda r: (r / "metrics.json").write_text("{oops")),
    "run-labels-invalid-json": edit_run("lora", lambda r: (r / "labels.json").write_text("[1, 2")),
    "run-labels-not-a-list": edit_run("full", lambda r: (r / "labels.json").write_text('{"labels": "ab"}')),
    "run-config-invalid-yaml": edit_run("full", lambda r: (r / "config.yaml").write_text("a: [1,\n")),
    "run-truncated-safetensors": truncated_weights("full"),
    "run-truncated-adapter": truncated_weights("lora"),
    "run-missing-weights": edit_run("full", lambda r: (r / "model" / "model.safetensors").unlink()),
    "run-missing-model-config": edit_run("full", lambda r: (r / "model" / "config.json").unlink()),
    "run-labels-mismatch-full": edit_run("full", _labels(3)),
    "run-labels-mismatch-lora": edit_run("lora", _labels(3)),
    "run-only-pytorch-bin": edit_run("full", _only_bin),
    "run-labels-mismatch-evaluate": edit_run("full", _labels(3), "evaluate"),
    "run-truncated-merge": edit_run("lora", lambda r: _truncate(r / "model" / "adapter_model.safetensors"),
                                    "merge"),
    "run-labels-a-list": predict(edit=write("labels.json", '["negative", "positive"]')),
    "run-labels-duplicate": predict(edit=write("labels.json", '{"labels": ["positive", "positive"]}')),
    "run-labels-empty-name": predict("lora", edit=write("labels.json", '{"labels": ["", "positive"]}')),
    "run-config-a-list": predict(edit=write("config.yaml", "- a\n- b\n")),
    "run-config-a-string": predict(edit=write("config.yaml", "just some words\n")),
    "run-config-max-length-lots": predict(edit=write("config.yaml", "max_length: lots\n")),
    "run-metrics-a-list": predict(edit=write("metrics.json", "[1, 2]")),
    "run-metrics-a-list-evaluate": edit_run("full", write("metrics.json", "[1, 2]"), "evaluate"),
    "serve-run-missing": lambda c: ["serve", "--run", str(c.tmp / "no-run"), "--no-ui", "--no-chat"],
    "serve-run-labels-a-list": predict(edit=write("labels.json", "[]"), command="serve"),
    "predict-zero-width-text": predict("full", "\u200b\u200d\ufeff"),
    "predict-nul-text": predict("full", "fine", "\x00\x00"),
    "predict-lone-surrogate": predict("full", "\ud800"),
    "predict-input-zero-width": lambda c: ["predict", str(c.run()), "--input", c.file("zw.txt", "\u200b\u2060\n")],
    "predict-input-nul": lambda c: ["predict", str(c.run()), "--input", c.file("nul.txt", "a film\n\x00\x00\n")],
    "evaluate-output-a-directory": lambda c: ["evaluate", str(c.run()), "--data", labelled(c), "--output",
                                              str(Path(c.file("busy/x.txt", "x")).parent)],
    "evaluate-output-no-folder": lambda c: ["evaluate", str(c.run()), "--data", labelled(c), "--output",
                                            str(c.tmp / "nope" / "m.json")],
    "predict-input-missing": lambda c: ["predict", str(c.run()), "--input", str(c.tmp / "nope.txt")],
    "predict-input-latin-1": lambda c: ["predict", str(c.run()), "--input", c.file("in.txt", "café\n", "latin-1")],
    "predict-blank-text": lambda c: ["predict", str(c.run()), "   "],
    "evaluate-unseen-labels": lambda c: ["evaluate", str(c.run()), "--data", c.file(
        "e.csv", "text,label\ngood,positive\nmeh,neutral\n")],
    "merge-into-nonempty": lambda c: ["merge", str(c.run("lora")), str(Path(c.file("busy/x.txt", "x")).parent)],
    # -- checkpoints under --resume (the last one, checkpoint-2, broken) ---------------------------------
    "resume-garbage-optimizer": lambda c: c.resume("full", lambda ck: _garbage(ck / "optimizer.pt")),
    "resume-truncated-optimizer": lambda c: c.resume("full", lambda ck: _truncate(ck / "optimizer.pt")),
    "resume-garbage-scheduler": lambda c: c.resume("lora", lambda ck: _garbage(ck / "scheduler.pt")),
    "resume-garbage-rng-state": lambda c: c.resume("full", lambda ck: _garbage(ck / "rng_state.pth")),
    "resume-foreign-pickle-rng-state": lambda c: c.resume("full", lambda ck: _foreign_pickle(ck / "rng_state.pth")),
    "resume-trainer-state-cut-short": lambda c: c.resume("full", lambda ck: _truncate(ck / "trainer_state.json", 20)),
    "resume-trainer-state-a-list": lambda c: c.resume("lora", lambda ck: (ck / "trainer_state.json").write_text("[]")),
    "resume-truncated-model": lambda c: c.resume("full", lambda ck: _truncate(ck / "model.safetensors")),
    "resume-missing-weights": lambda c: c.resume("full", lambda ck: (ck / "model.safetensors").unlink()),
    "resume-truncated-adapter": lambda c: c.resume("lora", lambda ck: _truncate(ck / "adapter_model.safetensors")),
    "resume-garbage-model-config": lambda c: c.resume("full", lambda ck: _garbage(ck / "config.json")),
    "resume-nothing-to-resume": lambda c: c.resume("full", shutil.rmtree),
}


CASES = [Case(input=group["input"], argv=INPUTS[c["id"]], **c) for group in SPEC["cli"] for c in group["cases"]]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a digest of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


run_in_process = run_cli  # conftest's


def run_subprocess(argv: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "attnlab.cli", *argv], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def ctx(tmp_path, tiny_bert, tiny_bert_runs, sst2_dir, request) -> Ctx:
    return Ctx(tmp_path / "work", tiny_bert, tiny_bert_runs, sst2_dir, request)


def test_enough_cases_and_the_docs_list_them():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert sum(c.subprocess for c in CASES) >= 4
    assert len(REST_CASES) >= 15 and len({c.id for c in CASES + REST_CASES}) == len(CASES) + len(REST_CASES)
    assert set(INPUTS) == {c.id for c in CASES}, "an input in INPUTS without its case in bad_input_cases.toml"
    assert set(BODIES) == {c.id for c in REST_CASES}, "a body in BODIES without its case in bad_input_cases.toml"
    module = load_script(REPO / "docs" / "gen" / "reliability.py", "docs_gen_reliability")
    for path, text in module.render().items():  # docs/reliability.md includes these tables
        assert path.read_text(encoding="utf-8") == text, "run: python docs/gen/reliability.py"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, ctx: Ctx, capsys):
    ctx.tmp.mkdir(parents=True, exist_ok=True)
    argv = case.argv(ctx)
    before = snapshot(ctx.tmp)
    code, _out, err = run_subprocess(argv) if case.subprocess else run_in_process(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    if case.subprocess:  # a fresh process: nothing but the one line (no progress bars, no logs)
        assert len(lines) == 1, err
    assert case.error.lower() in errors[0].lower(), errors[0]
    assert snapshot(ctx.tmp) == before, "a failed command changed files"
    assert not (ctx.tmp / "out").exists()


# -- REST request bodies (attnlab serve) -------------------------------------------------------------


@dataclass(frozen=True)
class RestCase:
    """A case of ``[rest]`` in docs/gen/bad_input_cases.toml: a bad request body sent to ``path``; it must get
    ``status`` (4xx) and ``{"error": "<one line>"}`` containing ``error``, change no file, and leave the
    server answering good requests."""

    id: str
    path: str
    status: int
    error: str
    body: object  # JSON-encodable, or bytes sent as they are (as application/json)


BODIES: dict[str, object] = {  # case id -> the body it sends
    "rest-texts-not-a-list": {"texts": "one text"},
    "rest-text-not-a-string": {"texts": ["ok", 7]},
    "rest-text-null": {"texts": [None]},
    "rest-run-not-a-string": {"texts": ["ok"], "run": 3},
    "rest-body-a-list": ["ok"],
    "rest-layer-not-an-int": {"text": "ok", "layer": "1"},
    "rest-empty-texts": {"texts": []},
    "rest-empty-messages": {"messages": []},
    "rest-blank-text": {"texts": ["fine", "   "]},
    "rest-too-many-texts": {"texts": ["a"] * 65},
    "rest-text-too-long": {"texts": ["x" * 2001]},
    "rest-body-too-large": b'{"texts": ["' + b"a" * 1_000_001 + b'"]}',
    "rest-invalid-utf8": b'{"texts": ["caf\xe9"]}',
    "rest-invalid-json": b'{"texts": ["ok"',
    "rest-empty-body": b"",
    "rest-missing-field": {},
    "rest-unknown-field": {"texts": ["ok"], "colour": "red"},
    "rest-run-is-a-path": {"texts": ["ok"], "run": "../lora"},
    "rest-unknown-run": {"texts": ["ok"], "run": "nope"},
    "rest-zero-width-text": {"texts": ["\u200b\u200d\u2060"]},
    "rest-nul-text": {"texts": ["\x00\x00"]},
    "rest-control-only-text": {"texts": ["ok", "\x07\x1b"]},
    "rest-bom-only-text": {"texts": ["\ufeff"]},
    "rest-lone-surrogate": b'{"texts": ["\\ud800"]}',  # valid JSON, not valid Unicode
    "rest-lone-low-surrogate": b'{"texts": ["fine", "\\udc00 tail"]}',
    "rest-text-a-nested-list": {"texts": [["nested"]]},
    "rest-duplicate-key": b'{"texts": ["a"], "texts": 5}',  # the last one counts
    "rest-deep-nesting": b"[" * 200 + b"]" * 200,
    "rest-run-with-nul": b'{"texts": ["ok"], "run": "lora\\u0000"}',
    "rest-run-empty": {"texts": ["ok"], "run": ""},
    "rest-attention-zero-width": {"text": "\u200b"},
    "rest-attention-nul": {"text": "\x00"},
    "rest-attention-lone-surrogate": b'{"text": "\\ud800"}',
    "rest-attention-run-is-a-path": {"text": "ok", "run": "../../etc"},
    "rest-layer-out-of-range": {"text": "ok", "layer": 99},
    "rest-negative-layer-out-of-range": {"text": "ok", "layer": -99},
    "rest-layer-huge-float": b'{"text": "ok", "layer": 1e999}',
    "rest-layer-nan": b'{"text": "ok", "layer": NaN}',
    "rest-head-huge": {"text": "ok", "head": 10**30},
    "rest-explain-unknown-method": {"text": "ok", "methods": ["saliency"]},
    "rest-explain-no-methods": {"text": "ok", "methods": []},
    "rest-explain-methods-not-a-list": {"text": "ok", "methods": "ig,occlusion"},
    "rest-explain-blank-text": {"text": " \t "},
    "rest-explain-run-is-a-path": {"text": "ok", "run": "/etc"},
}
REST_CASES = [RestCase(body=BODIES[c["id"]], **c) for c in SPEC["rest"]["cases"]]


@pytest.fixture(scope="module")
def rest_client(tiny_bert_runs, tmp_path_factory):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnlab.serve import create_app

    run = tmp_path_factory.mktemp("rest") / "lora"
    shutil.copytree(tiny_bert_runs["lora"], run)
    with TestClient(create_app([run], ui=False, chat=False, explain_models=[])) as client:
        yield client, run


@pytest.mark.parametrize("case", REST_CASES, ids=[c.id for c in REST_CASES])
def test_bad_rest_request_is_one_json_error_and_changes_nothing(case: RestCase, rest_client):
    client, run = rest_client
    before = snapshot(run)
    if isinstance(case.body, bytes):
        r = client.post(case.path, content=case.body, headers={"content-type": "application/json"})
    else:
        r = client.post(case.path, json=case.body)
    assert r.status_code == case.status and 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"], body
    assert case.error.lower() in body["error"].lower(), body["error"]
    assert snapshot(run) == before, "a bad request changed the served run"
    assert client.post("/v1/classify", json={"texts": ["a fine film"]}).status_code == 200  # still answering


# -- odd but valid input must work ------------------------------------------------------------------


def _load(path: Path, **kw):
    from attnlab.data import load_data

    return load_data(str(path), **kw)


def test_utf8_bom_crlf_and_quotes_work(tmp_path):
    body = 'text,label\r\n"a ""quoted"", comma, film",pos\r\n' + rows().replace("\n", "\r\n")
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    ds = _load(p)
    texts = [t for s in ds.splits.values() for t in s["text"]]
    assert len(texts) == 13 and ds.labels == ["neg", "pos"]
    assert 'a "quoted", comma, film' in texts
    assert not any("\r" in t or "\ufeff" in t for t in texts)


def test_extra_columns_are_ignored(tmp_path):
    p = tmp_path / "extra.csv"
    p.write_text("id,text,label,notes\n" + "".join(f"{i},film {i},{'pos' if i % 2 else 'neg'},x\n" for i in range(12)))
    assert _load(p).labels == ["neg", "pos"]


def test_very_long_texts_work_and_are_truncated(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    from attnlab.inference import Predictor
    from attnlab.training.classification import tokenize

    long = "an endlessly winding but lovely film " * 300  # ~11k characters
    assert len(long) > 10_000
    p = tmp_path / "long.csv"
    p.write_text("text,label\n" + "".join(f"{long} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(12)))
    ds = _load(p)
    assert all(len(t) > 10_000 for t in ds.splits["train"]["text"])
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    enc = tokenize(ds, tok, 64)
    assert max(enc["train"]["length"]) == 64
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    probs = Predictor(model, tok, ["neg", "pos"], max_length=64, batch_size=2).predict_proba([long, "short", long])
    assert probs.shape == (3, 2)
