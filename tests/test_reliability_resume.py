"""Crash and resume: a training run killed with SIGKILL, or stopped with Ctrl-C, is never mistaken
for a finished run, and ``--resume`` continues it from its last complete checkpoint to the same
result as a run that was never interrupted.

Resume tolerance: on CPU with the same seed and thread count Trainer's resume is bit-identical here
(RNG states, optimizer, scheduler and the data order are restored; the batches of the interrupted
epoch are skipped). The tests assert equal accuracies and losses/weights within ``TOL`` = 1e-6.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from attnlab import rundir
from attnlab.cli import main
from attnlab.errors import UserError
from attnlab.training.rundir import open_run

TOL = 1e-6
TIMEOUT = 300  # seconds for any one training process, on a busy machine
# 40 training rows, batch 4, 2 epochs = 20 steps; evaluate and checkpoint every 4 steps
SETTINGS = ["--method", "lora", "--lora-r", "2", "--learning-rate", "1e-2", "--max-train-samples", "40",
            "--max-eval-samples", "16", "--batch-size", "4", "--epochs", "2", "--eval-every-steps", "4",
            "--no-early-stopping", "--logging-steps", "1", "--num-threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for every run here, in-process and subprocess alike: same arithmetic in both,
    and no OpenMP spinning on a busy machine. Restored afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def train_args(tiny_bert, sst2_dir, one_thread) -> list[str]:
    return ["train", "--data", "sst2", "--data-dir", str(sst2_dir), "--model", str(tiny_bert), *SETTINGS]


@pytest.fixture(scope="module")
def reference(train_args, tmp_path_factory) -> Path:
    """The same run, never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main([*train_args, "-o", str(out)]) == 0
    return out


SLOW_STEPS = """import time
import transformers

_step = transformers.Trainer.training_step


def _slow_step(self, *args, **kwargs):  # test only: leave time to interrupt the run mid-epoch
    time.sleep(0.25)
    return _step(self, *args, **kwargs)


transformers.Trainer.training_step = _slow_step
"""


def start(train_args: list[str], out: Path, slow_steps: bool = False) -> subprocess.Popen:
    """Train in a child process. ``slow_steps`` adds a sleep (wall time only, same arithmetic) before
    every training step, so a signal sent after the first checkpoint surely lands mid-training even
    on a fast, idle machine (a ``sitecustomize`` module on the child's path patches Trainer)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "w")  # a file, not a pipe: a full pipe would stall the child
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    if slow_steps:
        site = out.parent / "slow_site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(SLOW_STEPS)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    # a CI runner started in the background hands its children SIGINT ignored; a user's terminal does not
    return subprocess.Popen([sys.executable, "-m", "attnlab.cli", *train_args, "-o", str(out)],
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_checkpoint(proc: subprocess.Popen, out: Path) -> Path:
    """Poll until the run has a complete checkpoint (trainer_state.json written: Trainer writes it last)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ckpt = rundir.last_checkpoint(out)
        if ckpt is not None:
            return ckpt
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) before its first checkpoint:\n"
                        + (out.parent / f"{out.name}.log").read_text()[-3000:])
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no checkpoint within the time limit")


def assert_unfinished_and_refused(out: Path, train_args: list[str], capsys) -> None:
    assert not (out / rundir.METRICS).exists()
    assert not rundir.is_finished_run(out)
    with pytest.raises(UserError, match="--resume"):
        open_run(out)
    assert main(["predict", str(out), "a fine film"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: not a finished attnlab run") and "--resume" in err[0]
    assert main([*train_args, "-o", str(out)]) == 2  # a new run may not silently clobber it
    assert "pass --resume to continue it" in capsys.readouterr().err.lower()


def weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    (f,) = (run / "model").glob("*.safetensors")
    return load_file(f)


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / rundir.HISTORY).read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps)), "history.jsonl repeats or reorders steps"
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def assert_same_result(run: Path, reference: Path) -> None:
    m, ref = (json.loads((p / rundir.METRICS).read_text()) for p in (run, reference))
    assert m["training"]["resumed"] and not ref["training"]["resumed"]
    assert m["training"]["steps"] == ref["training"]["steps"] == 20
    for split in ("validation", "test"):
        assert m[split]["accuracy"] == ref[split]["accuracy"]
        assert m[split]["confusion_matrix"] == ref[split]["confusion_matrix"]
        assert abs(m[split]["loss"] - ref[split]["loss"]) <= TOL, (split, m[split]["loss"], ref[split]["loss"])
    a, b = losses(run), losses(reference)
    assert a.keys() == b.keys() == set(range(1, 21))  # the curve continues across the restart
    assert max(abs(a[s] - b[s]) for s in a) <= TOL
    wa, wb = weights(run), weights(reference)
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= TOL


def test_sigkill_mid_run_then_resume_matches_uninterrupted(train_args, reference, tmp_path, capsys, caplog):
    out = tmp_path / "run"
    proc = start(train_args, out, slow_steps=True)
    ckpt = wait_for_checkpoint(proc, out)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    assert not (out / "model").exists()  # model/ appears only at the end, by rename
    assert_unfinished_and_refused(out, train_args, capsys)
    last = rundir.last_checkpoint(out)
    assert last is not None and int(last.name.split("-")[1]) >= int(ckpt.name.split("-")[1])
    # a checkpoint the kill cut short (Trainer writes trainer_state.json last): skipped and removed
    torn = out / rundir.CHECKPOINTS / "checkpoint-19"
    torn.mkdir()
    (torn / "trainer_state.json").write_text('{"global_step": 1')
    assert rundir.last_checkpoint(out) == last

    caplog.set_level(logging.INFO, logger="attnlab")
    assert main([*train_args, "-o", str(out), "--resume"]) == 0
    assert f"resuming from {last}" in caplog.text
    assert rundir.is_finished_run(out) and not (out / rundir.CHECKPOINTS).exists()
    assert_same_result(out, reference)


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes(train_args, reference, tmp_path, capsys):
    out = tmp_path / "run"
    proc = start(train_args, out, slow_steps=True)
    first = wait_for_checkpoint(proc, out)
    assert proc.poll() is None, "the run finished before Ctrl-C"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=TIMEOUT) == 130
    log = (out.parent / "run.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    last_line = log.strip().splitlines()[-1]
    assert last_line.startswith("interrupted: training stopped at step") and "--resume" in last_line, log[-2000:]

    ckpt = rundir.last_checkpoint(out)  # saved at the step Ctrl-C arrived, named in the message
    assert ckpt is not None and str(ckpt) in last_line
    assert int(ckpt.name.split("-")[1]) > int(first.name.split("-")[1])
    assert not (out / "model").exists()
    assert_unfinished_and_refused(out, train_args, capsys)

    assert main([*train_args, "-o", str(out), "--resume"]) == 0
    assert_same_result(out, reference)


def test_failed_final_save_leaves_no_model_dir_and_no_metrics(tiny_bert, sst2_dir, tmp_path, monkeypatch,
                                                             one_thread):
    """model/ is written into a temp folder and renamed: a crash while saving leaves no model/ and no
    metrics.json (written last), so nothing mistakes the directory for a finished run, and the
    half-written temp folder is removed."""
    import attnlab.training.train as train_mod
    from attnlab.training import TrainConfig

    real = train_mod._save_model

    class Crash(RuntimeError):
        pass

    seen: list[Path] = []

    class BrokenTokenizer:  # the model's weights are written first, then this fails
        def save_pretrained(self, folder, *a, **kw):
            seen.append(Path(folder))
            assert list(Path(folder).glob("*.safetensors"))  # the weights went to the temp folder
            raise Crash("disk full")

    monkeypatch.setattr(train_mod, "_save_model", lambda trainer, tok, target, is_adapter: real(
        trainer, BrokenTokenizer(), target, is_adapter))
    out = tmp_path / "run"
    cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method="head",
                                   output_dir=str(out), max_train_samples=8, max_eval_samples=4, max_steps=1,
                                   batch_size=8, num_threads=1)
    with pytest.raises(Crash):
        train_mod.train(cfg, progress=False)
    assert not (out / "model").exists() and not (out / rundir.METRICS).exists()
    assert not rundir.is_finished_run(out)
    assert len(seen) == 1 and seen[0].parent == out and seen[0].name.startswith(".model.")
    assert not seen[0].exists() and not list(out.glob(".model.*"))  # the half-written temp folder is gone


def test_last_checkpoint_skips_incomplete_ones(tmp_path):
    ck = tmp_path / rundir.CHECKPOINTS
    for step, state in ((4, '{"global_step": 4}'), (8, '{"global_step": 8}'), (12, '{"glob'), (16, None)):
        (ck / f"checkpoint-{step}").mkdir(parents=True)
        if state is not None:
            (ck / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (ck / "checkpoint-x").mkdir()
    assert [p.name for p in rundir.checkpoints(tmp_path)] == ["checkpoint-4", "checkpoint-8"]
    assert rundir.last_checkpoint(tmp_path) == ck / "checkpoint-8"
    assert rundir.last_checkpoint(tmp_path / "nothing") is None


def test_final_history_keeps_streamed_wall_times_after_a_resume(tmp_path):
    """history.jsonl is rewritten from the Trainer's log at the end (no repeats after a resume),
    keeping the wall time streamed for each row; the later time wins for a step logged twice."""
    from attnlab.training.callbacks import final_history

    streamed = tmp_path / "history.jsonl"
    streamed.write_text("\n".join([
        json.dumps({"step": 1, "epoch": 0.5, "wall_seconds": 1.0, "loss": 0.7}),
        json.dumps({"step": 2, "epoch": 1.0, "wall_seconds": 2.0, "loss": 0.6}),  # logged, then the crash
        json.dumps({"step": 2, "epoch": 1.0, "wall_seconds": 9.0, "loss": 0.6}),  # logged again after --resume
        json.dumps({"step": 2, "epoch": 1.0, "wall_seconds": 9.5, "eval_loss": 0.5, "eval_accuracy": 0.8}),
        '{"step": 3, "epoch": 1.5, "wall_sec',  # cut short by a crash
    ]) + "\n")
    log = [{"loss": 0.7, "epoch": 0.5, "step": 1}, {"loss": 0.6, "epoch": 1.0, "step": 2},
           {"eval_loss": 0.5, "eval_accuracy": 0.8, "epoch": 1.0, "step": 2}, {"train_runtime": 3.0, "step": 3}]
    rows = final_history(streamed, log)
    assert [r.get("wall_seconds") for r in rows] == [1.0, 9.0, 9.5, None]
    assert [r["step"] for r in rows] == [1, 2, 2, 3] and rows[2]["eval_accuracy"] == 0.8
    assert final_history(tmp_path / "missing.jsonl", log)[0] == {"step": 1, "epoch": 0.5, "loss": 0.7}
