"""A disk that fills up (or a folder that cannot be written) while attnlab writes: one UserError line
that says what was being written, where and what to do; the temporary file or folder removed; what
was at the target before left as it was. Every way a library reports a full disk counts: OSError
ENOSPC/EDQUOT, safetensors' "No space left on device", torch's bare error on a disk found full."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from attnlab import io, rundir
from attnlab.errors import UserError

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def plenty_of_space(monkeypatch):
    monkeypatch.setattr(io.shutil, "disk_usage", lambda folder: Usage(10**12, 0, 10**12))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_while_writing_a_file_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, plenty_of_space,
                                                                             code):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": true}\n')

    def full(self, data):
        raise OSError(code, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(UserError) as info:
        io.write_json_atomic(target, {"new": True})
    line = info.value.one_line()
    assert "\n" not in line and line.startswith("the disk is full: could not write metrics.json")
    assert f"({tmp_path})" in line and "Free space on that disk" in line
    assert target.read_text() == '{"old": true}\n' and _leftovers(tmp_path) == []


def test_a_full_disk_while_filling_a_folder_removes_the_temp_folder_and_keeps_the_old_one(tmp_path, plenty_of_space):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("old")
    with pytest.raises(UserError, match=r"the disk is full: could not write model \("), \
            io.atomic_dir(target, overwrite=True) as tmp:
        (tmp / "config.json").write_text("{}")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "model.safetensors"))
    assert (target / "weights").read_text() == "old" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [
    Exception("Error while serializing: I/O error: No space left on device (os error 28)"),  # safetensors' words
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),  # torch.save's
])
def test_a_full_disk_is_recognised_however_the_library_says_it(tmp_path, monkeypatch, exc):
    free = 0 if isinstance(exc, RuntimeError) else 10**12  # torch's message says nothing: the disk is found full
    monkeypatch.setattr(io.shutil, "disk_usage", lambda folder: Usage(10**12, 10**12 - free, free))
    with pytest.raises(UserError, match="the disk is full: could not write model"), \
            io.atomic_dir(tmp_path / "model") as tmp:
        (tmp / "part").write_text("x")
        raise exc
    assert list(tmp_path.iterdir()) == []


def test_other_refused_writes_are_one_line_too(tmp_path, monkeypatch, plenty_of_space):
    def denied(self, data):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", denied)
    with pytest.raises(UserError, match=r"no permission to write a\.txt: Permission denied") as info:
        io.write_text_atomic(tmp_path / "a.txt", "x")
    assert "Choose a folder you can write to" in info.value.one_line() and _leftovers(tmp_path) == []
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(UserError, match=r"could not write a\.txt: I/O error"):
        io.write_text_atomic(tmp_path / "a.txt", "x")


def test_a_bug_keeps_its_traceback_and_still_leaves_no_temp(tmp_path, plenty_of_space):
    with pytest.raises(ValueError, match="a bug"), io.atomic_dir(tmp_path / "model") as tmp:
        (tmp / "part").write_text("x")
        raise ValueError("a bug")
    with pytest.raises(KeyError), io.atomic_path(tmp_path / "f.txt"):
        raise KeyError("a bug")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, plenty_of_space):
    def full(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    with pytest.raises(UserError, match=r"the disk is full: could not write x\.json"):
        io.write_json_atomic(tmp_path / "new" / "x.json", {})


# -- training: the final save and the checkpoints ------------------------------------------------------


def _cfg(tiny_bert: Path, sst2_dir: Path, out: Path, **kw):
    from attnlab.training import TrainConfig

    return TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method="full",
                                    output_dir=str(out), max_train_samples=8, max_eval_samples=4, max_steps=1,
                                    batch_size=8, num_threads=1, **kw)


@pytest.mark.train
def test_a_full_disk_at_the_final_save_leaves_no_temp_model_folder(tiny_bert, sst2_dir, tmp_path, monkeypatch,
                                                                   plenty_of_space):
    """The weights go to ``.model.<random>`` first; the disk filling up there is one line, the temp folder
    goes, and no metrics.json marks the run finished."""
    from transformers import PreTrainedModel

    real = PreTrainedModel.save_pretrained

    def full(self, folder, *a, **kw):
        if Path(folder).name.startswith(".model."):  # the final save, not a checkpoint
            real(self, folder, *a, **kw)
            (Path(folder) / "more.safetensors").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, folder, *a, **kw)

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    from attnlab.training.train import train

    out = tmp_path / "run"
    with pytest.raises(UserError) as info:
        train(_cfg(tiny_bert, sst2_dir, out), progress=False)
    assert info.value.one_line().startswith(f"the disk is full: could not write model ({out})")
    assert not list(out.glob(".model.*")) and not list(out.glob(".*.tmp"))
    assert not (out / rundir.MODEL_DIR).exists() and not (out / rundir.METRICS).exists()


@pytest.mark.train
def test_a_full_disk_during_training_is_one_line_and_removes_the_cut_short_checkpoint(tiny_bert, sst2_dir, tmp_path,
                                                                                     monkeypatch, plenty_of_space):
    from transformers import Trainer

    def full(self, *a, **kw):  # the checkpoint folder is made, then the disk fills up
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(Trainer, "_save_checkpoint", full)
    from attnlab.training.train import train

    out = tmp_path / "run"
    with pytest.raises(UserError) as info:
        train(_cfg(tiny_bert, sst2_dir, out), progress=False)
    line = info.value.one_line()
    assert line.startswith(f"the disk filled up during training ({out})") and "--overwrite" in line
    assert list((out / rundir.CHECKPOINTS).glob("checkpoint-*")) == []
    assert not rundir.is_finished_run(out) and not list(out.glob(".*"))


def test_the_cli_prints_one_line_and_exits_2(tiny_bert_runs, tmp_path, monkeypatch, capsys, plenty_of_space):
    from conftest import run_cli

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    data = tmp_path / "e.csv"
    data.write_text("text,label\n" + "".join(f"film {i},{'positive' if i % 2 else 'negative'}\n" for i in range(8)))
    run = tmp_path / "run"
    shutil.copytree(tiny_bert_runs["full"], run)
    monkeypatch.setattr(Path, "write_bytes", full)
    code, _out, err = run_cli(["evaluate", str(run), "--data", str(data), "--output", str(tmp_path / "m.json")], capsys)
    assert code == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("error: the disk is full: could not write m.json")
    assert not (tmp_path / "m.json").exists() and _leftovers(tmp_path) == []
