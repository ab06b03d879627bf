"""Trainer callbacks: wall-clock timing per epoch and step, the training curve on disk, and a clean
stop (checkpoint, then exit) on Ctrl-C; and the guards around ``trainer.train()``: a checkpoint to
resume from is read through before training starts, and a corrupt checkpoint or a disk that fills
up during training ends in one :class:`~attnlab.errors.UserError` line instead of a traceback."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from attnlab import rundir
from attnlab.errors import UserError
from attnlab.io import disk_full

log = logging.getLogger(__name__)


class TimingCallback(TrainerCallback):
    """Wall time of each epoch's training steps (evaluation excluded) and of each optimiser step."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.step_seconds: list[float] = []
        self._epoch_start = self._step_start = None
        self.train_start = self.train_end = None

    def on_train_begin(self, args, state, control, **kw):
        self.train_start = time.perf_counter()

    def on_epoch_begin(self, args, state, control, **kw):
        self._epoch_start = time.perf_counter()

    def on_step_begin(self, args, state, control, **kw):
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._step_start is not None:
            self.step_seconds.append(time.perf_counter() - self._step_start)

    def on_epoch_end(self, args, state, control, **kw):
        if self._epoch_start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)

    def on_train_end(self, args, state, control, **kw):
        self.train_end = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        if self.train_start is None or self.train_end is None:
            return 0.0
        return self.train_end - self.train_start


class HistoryCallback(TrainerCallback):
    """Append every log line (loss, lr, eval metrics) to ``history.jsonl`` as training goes, with
    the wall time since the run began, so a curve survives a crash."""

    def __init__(self, path: Path, is_main: bool) -> None:
        self.path, self.is_main = path, is_main
        self.start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kw):
        if not self.is_main or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch,
               "wall_seconds": round(time.perf_counter() - self.start, 3)}
        row.update({k: v for k, v in logs.items() if isinstance(v, int | float | str)})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def final_history(streamed: Path, log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's history as the Trainer's ``log_history`` (one row per log, no repeats after a
    resume), each row keeping the ``wall_seconds`` that :class:`HistoryCallback` streamed for it
    (matched by step and logged keys; after a resume the later time wins)."""
    walls: dict[tuple[Any, ...], float] = {}
    if streamed.is_file():
        for line in streamed.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if "wall_seconds" in row:
                walls[_history_key(row)] = row["wall_seconds"]
    out = []
    for h in log_history:
        row = {"step": h.get("step"), "epoch": h.get("epoch")}
        wall = walls.get(_history_key(h))
        if wall is not None:
            row["wall_seconds"] = wall
        out.append(row | h)
    return out


def _history_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("step"), *sorted(k for k in row if k not in ("step", "epoch", "wall_seconds")))


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a checkpoint was saved; the message says where and how to resume."""


class InterruptCallback(TrainerCallback):
    """Ctrl-C (SIGINT) during training finishes the current step, saves a checkpoint and stops, so
    the run can be continued with ``--resume``; a second Ctrl-C stops at once. Only installed in a
    single process's main thread (under torchrun the ranks would not agree on the step)."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self):
        previous = signal.getsignal(signal.SIGINT)
        single = int(os.environ.get("WORLD_SIZE", "1")) == 1
        if not single or threading.current_thread() is not threading.main_thread() or previous is signal.SIG_IGN:
            yield self
            return

        def handle(signum, frame):
            self.requested = True
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

        signal.signal(signal.SIGINT, handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

    def on_step_end(self, args, state, control, **kw):
        if self.requested:
            log.warning("interrupted: saving a checkpoint at step %d, then stopping (Ctrl-C again to stop at once)",
                        state.global_step)
            control.should_save = True
            control.should_training_stop = True


# -- resuming and the disk ---------------------------------------------------------------------------

# what Trainer loads a checkpoint's model from (one of them must be there); training_args.bin is
# never read back on resume (and is a full pickle, which a weights-only load refuses)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                "pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin")
UNREAD_ON_RESUME = ("training_args.bin",)


def _corrupt_checkpoint(checkpoint: Path, what: str, where: Path) -> UserError:
    earlier = [c for c in rundir.checkpoints(checkpoint.parent.parent) if c != checkpoint]
    instead = f"delete {checkpoint} to resume from {earlier[-1].name}, or " if earlier else ""
    return UserError(f"cannot resume: {what}", where=str(where),
                     fix=f"{instead}start over with --overwrite instead of --resume")


def check_checkpoint(checkpoint: Path) -> None:
    """Read through what Trainer reads from ``checkpoint`` when resuming, before anything loads: the
    JSON files parse, every safetensors header fits its file, every torch file loads with
    ``weights_only=True`` (memory-mapped, so cheap), and the model weights are there. Deletes nothing."""
    import torch
    from safetensors import safe_open
    from transformers.trainer_pt_utils import safe_globals  # the numpy types Trainer allows in rng_state.pth

    files = {f.name: f for f in checkpoint.iterdir() if f.is_file()}
    if not any(name in files for name in WEIGHT_FILES):
        raise _corrupt_checkpoint(checkpoint, "the checkpoint has no model weights (model.safetensors or "
                                              "adapter_model.safetensors)", checkpoint)
    for name, f in sorted(files.items()):
        try:
            if name.endswith(".json"):
                if not isinstance(json.loads(f.read_text(encoding="utf-8")), dict):
                    raise ValueError("not a JSON object")
            elif name.endswith(".safetensors"):
                with safe_open(f, framework="pt") as st:
                    st.keys()
            elif name.endswith((".pt", ".pth", ".bin")) and name not in UNREAD_ON_RESUME:
                with safe_globals():
                    torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # any way a file can be unreadable: truncated, garbage, a foreign pickle
            raise _corrupt_checkpoint(checkpoint, f"{name} is corrupt or unreadable ({type(exc).__name__})",
                                      f) from None


def _loading_checkpoint(exc: BaseException) -> bool:
    """Whether ``exc`` came from Trainer reading a checkpoint (its ``_load_*`` methods, ``load_from_json``)."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        if name.startswith("_load") or name == "load_from_json":
            return True
        tb = tb.tb_next
    return False


def training_failure(exc: Exception, out: Path, checkpoint: Path | None) -> UserError | None:
    """The one-line error for ``trainer.train()`` failing on a corrupt ``checkpoint`` being resumed
    or on a full disk under ``out``; ``None`` for anything else (a bug keeps its traceback)."""
    if isinstance(exc, UserError):
        return exc
    if checkpoint is not None and _loading_checkpoint(exc):
        return _corrupt_checkpoint(checkpoint, f"reading the checkpoint failed ({type(exc).__name__}: "
                                               f"{str(exc).splitlines()[0][:120] if str(exc) else ''})", checkpoint)
    if disk_full(exc, out):
        for torn in set((out / rundir.CHECKPOINTS).glob("checkpoint-*")) - set(rundir.checkpoints(out)):
            shutil.rmtree(torn, ignore_errors=True)  # the checkpoint the disk cut short
        again = "plus --resume to continue from its last checkpoint" if rundir.last_checkpoint(out) else (
            "plus --overwrite (no checkpoint was saved)")
        return UserError("the disk filled up during training", where=str(out),
                         fix=f"free space on that disk, then run the same command {again}")
    return None
