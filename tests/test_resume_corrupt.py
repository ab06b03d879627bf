"""``--resume`` from a corrupt checkpoint: one line that names the file and the way out (delete that
checkpoint to resume from the one before, or start over with --overwrite), exit 2, nothing deleted.
The checkpoint is read through before training starts; what only Trainer's own loading finds is
turned into the same one line."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from attnlab import rundir
from attnlab.errors import UserError
from attnlab.training.callbacks import check_checkpoint

pytestmark = pytest.mark.train  # the module's fixture trains


def _args(out: Path, tiny_bert: Path, sst2_dir: Path, method: str = "full") -> list[str]:
    return ["train", "-o", str(out), "--data", "sst2", "--data-dir", str(sst2_dir), "--model", str(tiny_bert),
            "--method", method, "--max-train-samples", "16", "--max-eval-samples", "8", "--max-steps", "4",
            "--eval-every-steps", "2", "--batch-size", "8", "--lora-r", "2", "--num-threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory, tiny_bert, sst2_dir) -> dict[str, Path]:
    """Full and LoRA runs with checkpoints at steps 2 and 4 and no metrics.json: cut short, resumable."""
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("unfinished")
    runs = {}
    for method in ("full", "lora"):
        out = root / method
        assert main([*_args(out, tiny_bert, sst2_dir, method), "--keep-checkpoints"]) == 0
        (out / rundir.METRICS).unlink()
        assert [c.name for c in rundir.checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]
        runs[method] = out
    return runs


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x80\x04 not a pickle at all")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _foreign_pickle(path: Path) -> None:  # a pickle that a weights-only load refuses: code, not data
    import pickle

    path.write_bytes(pickle.dumps(shutil.rmtree))


CORRUPTIONS = {
    "optimizer.pt": _garbage, "scheduler.pt": _truncate, "rng_state.pth": _foreign_pickle,
    "model.safetensors": _truncate, "config.json": _garbage,
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupt_file_in_the_last_checkpoint_is_one_line_and_deletes_nothing(name, unfinished, tiny_bert, sst2_dir,
                                                                               tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(unfinished["full"], out)
    bad = out / rundir.CHECKPOINTS / "checkpoint-4" / name
    CORRUPTIONS[name](bad)
    before = _snapshot(out)
    code, _stdout, err = run_cli([*_args(out, tiny_bert, sst2_dir), "--resume"], capsys)
    assert code == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot resume: {name} is corrupt or unreadable"), err
    assert f"({bad})" in err and "to resume from checkpoint-2" in err and "--overwrite instead of --resume" in err
    assert _snapshot(out) == before


def test_the_only_checkpoint_corrupt_says_start_over(unfinished, tiny_bert, sst2_dir, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(unfinished["lora"], out)
    shutil.rmtree(out / rundir.CHECKPOINTS / "checkpoint-2")
    _truncate(out / rundir.CHECKPOINTS / "checkpoint-4" / "adapter_model.safetensors")
    code, _stdout, err = run_cli([*_args(out, tiny_bert, sst2_dir, "lora"), "--resume"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "adapter_model.safetensors is corrupt" in err and "Start over with --overwrite" in err
    assert "delete" not in err.lower()


def test_missing_weights_and_a_cut_short_checkpoint(unfinished, tiny_bert, sst2_dir, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(unfinished["full"], out)
    (out / rundir.CHECKPOINTS / "checkpoint-4" / "model.safetensors").unlink()
    code, _stdout, err = run_cli([*_args(out, tiny_bert, sst2_dir), "--resume"], capsys)
    assert code == 2 and "the checkpoint has no model weights" in err and err.count("\n") == 1, err
    for ck in ("checkpoint-2", "checkpoint-4"):  # every checkpoint cut short before trainer_state.json
        (out / rundir.CHECKPOINTS / ck / "trainer_state.json").write_text('{"glob')
    before = _snapshot(out)
    code, _stdout, err = run_cli([*_args(out, tiny_bert, sst2_dir), "--resume"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "nothing to resume: checkpoint-2, checkpoint-4 never finished saving" in err and "--overwrite" in err
    assert _snapshot(out) == before


def test_what_only_trainer_finds_is_the_same_one_line(unfinished, tiny_bert, sst2_dir, tmp_path, capsys, monkeypatch):
    """With the read-through skipped, Trainer's own loading fails on the corrupt file: still one line."""
    import attnlab.training.train as train_mod

    monkeypatch.setattr(train_mod, "check_checkpoint", lambda checkpoint: None)
    out = tmp_path / "run"
    shutil.copytree(unfinished["full"], out)
    _garbage(out / rundir.CHECKPOINTS / "checkpoint-4" / "optimizer.pt")
    kept = {k: v for k, v in _snapshot(out).items() if k.startswith(rundir.CHECKPOINTS)}
    code, _stdout, err = run_cli([*_args(out, tiny_bert, sst2_dir), "--resume"], capsys)
    assert code == 2 and "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("error: cannot resume: reading the checkpoint failed (")
    assert "to resume from checkpoint-2" in last
    assert {k: v for k, v in _snapshot(out).items() if k.startswith(rundir.CHECKPOINTS)} == kept
    assert not rundir.is_finished_run(out)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_real_checkpoints_pass_the_read_through(unfinished, method):
    for checkpoint in rundir.checkpoints(unfinished[method]):
        check_checkpoint(checkpoint)  # no false alarm on what Trainer wrote (rng_state.pth holds numpy state)
    with pytest.raises(UserError, match="no model weights"):
        check_checkpoint(unfinished[method])  # the run folder itself is no checkpoint
