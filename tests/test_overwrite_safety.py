"""``--overwrite`` and concurrent writers never lose a run: the old directory goes only after the
new run's data, model and settings have resolved, only if it is an attnlab run, and a second
process writing the same output directory fails at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from attnlab import rundir
from attnlab.cli import main
from attnlab.training.rundir import open_run


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def _train(out: Path, tiny_bert: Path, sst2_dir: Path, *extra: str) -> list[str]:
    return ["train", "-o", str(out), "--data", "sst2", "--data-dir", str(sst2_dir), "--model", str(tiny_bert),
            "--max-steps", "1", "--max-train-samples", "16", "--max-eval-samples", "8", "--batch-size", "8",
            "--no-progress", *extra]


@pytest.mark.parametrize("bad", [
    ["--data", "typo.csv"],  # a data set that does not resolve
    ["--model", "no-such-model-here"],  # a model that does not resolve
    ["--lora-targets", "nothing_matches"],  # an adapter setting the model refuses
    ["--max-length", "600"],  # more tokens than the model has positions for (512)
])
def test_overwrite_keeps_the_old_run_when_the_new_one_cannot_start(tmp_path, tiny_bert, tiny_bert_runs, sst2_dir,
                                                                   capsys, bad):
    out = tmp_path / "run"
    shutil.copytree(tiny_bert_runs["lora"], out)
    before = _snapshot(out)
    argv = _train(out, tiny_bert, sst2_dir, "--method", "lora", "--overwrite")
    for flag in (bad[0],):  # the bad value replaces the good one
        i = argv.index(flag) if flag in argv else None
        if i is not None:
            del argv[i:i + 2]
    assert main([*argv, *bad]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert _snapshot(out) == before and rundir.is_finished_run(out)


def test_max_length_beyond_the_positions_is_refused_before_any_folder_is_made(tmp_path, tiny_bert, sst2_dir,
                                                                             capsys):
    out = tmp_path / "run"
    assert main(_train(out, tiny_bert, sst2_dir, "--max-length", "513")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has positions for (512)" in err and "Pass at most 512" in err
    assert not out.exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, tiny_bert, sst2_dir, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my own file")
    assert main(_train(out, tiny_bert, sst2_dir, "--overwrite")) == 2
    err = capsys.readouterr().err
    assert "attnlab runs only" in err and len(err.splitlines()) == 1
    assert (out / "notes.txt").read_text() == "my own file"


def test_overwrite_replaces_a_finished_run(tmp_path, tiny_bert, tiny_bert_runs, sst2_dir, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_bert_runs["full"], out)
    (out / "stale.txt").write_text("from the old run")
    assert main(_train(out, tiny_bert, sst2_dir, "--method", "lora", "--overwrite")) == 0
    capsys.readouterr()
    assert open_run(out).metrics["method"] == "lora" and not (out / "stale.txt").exists()


def test_a_second_writer_fails_at_once(tmp_path, tiny_bert, sst2_dir, capsys):
    out = tmp_path / "run"
    with rundir.writer_lock(out):  # another process is training into it
        assert main(_train(out, tiny_bert, sst2_dir)) == 2
        err = capsys.readouterr().err
        assert "another attnlab process" in err and len(err.splitlines()) == 1
        assert not out.exists() or not rundir.is_run_dir(out)
    assert main(_train(out, tiny_bert, sst2_dir)) == 0  # released: the same command now works
    capsys.readouterr()
    assert rundir.is_finished_run(out)


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    code = f"from pathlib import Path; from attnlab import rundir; import os\n" \
           f"with rundir.writer_lock(Path({str(out)!r})): os._exit(0)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=120).returncode == 0
    with rundir.writer_lock(out):
        pass
