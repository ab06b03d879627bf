"""``train``: data + model + method -> a finished run directory, with HF Trainer doing the work.

:func:`train` reads top-down: check the settings, build (:mod:`attnlab.training.build`: data, tokenizer,
the task's model prepared by the method, the task's Trainer), fit, evaluate, write the run. Neither
the method nor the task is asked its name: each is one registration that carries its facts.

The same code runs on one CPU, one GPU, or many processes under ``torchrun`` / ``accelerate
launch`` (Trainer uses Accelerate underneath); only rank 0 writes the run directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from transformers import EarlyStoppingCallback, Trainer

from attnlab import rundir
from attnlab.data import TextDataset
from attnlab.errors import UserError
from attnlab.evaluation.plots import plot_confusion_matrix, plot_history
from attnlab.io import atomic_dir, write_json_atomic, write_text_atomic
from attnlab.training.build import Setup, build, check, training_arguments
from attnlab.training.callbacks import (
    HistoryCallback,
    InterruptCallback,
    TimingCallback,
    TrainingInterrupted,
    check_checkpoint,
    final_history,
    training_failure,
)
from attnlab.training.card import model_card
from attnlab.training.config import TrainConfig
from attnlab.training.methods import base_weight_memory, count_params
from attnlab.training.rundir import open_run
from attnlab.training.tasks import Task, best_metric

log = logging.getLogger(__name__)


def _check_output_dir(out: Path, resume: bool, overwrite: bool) -> bool:
    """Whether ``out`` is to be replaced; checks only (nothing is deleted before data, model and
    settings have all resolved). ``--overwrite`` replaces an attnlab run, never a folder of other files."""
    if out.exists() and not out.is_dir():
        raise UserError("the output directory is a file", where=str(out), fix="choose another --output-dir")
    if not out.exists() or not any(out.iterdir()):
        if resume:
            raise UserError("nothing to resume: the output directory has no checkpoints", where=str(out),
                            fix="drop --resume to start a new run")
        return False
    if overwrite and not resume:
        if not rundir.is_run_dir(out):
            raise UserError("--overwrite replaces attnlab runs only; the output directory holds other files",
                            where=str(out), fix="choose another --output-dir, or empty that folder yourself")
        return True
    finished = rundir.is_finished_run(out)
    has_ckpt = rundir.last_checkpoint(out) is not None
    if resume:
        if not has_ckpt:
            torn = sorted(p.name for p in (out / rundir.CHECKPOINTS).glob("checkpoint-*"))
            what = f"{', '.join(torn)} never finished saving (no readable trainer_state.json)" if torn else (
                "no checkpoint in the output directory")
            raise UserError(f"nothing to resume: {what}", where=str(out),
                            fix="drop --resume and pass --overwrite to start over")
        check_checkpoint(rundir.last_checkpoint(out))  # a corrupt checkpoint fails now, not mid-way
        return False
    what = "a finished run" if finished else ("an unfinished run with checkpoints" if has_ckpt else "files")
    fix = "pass --resume to continue it, " if has_ckpt and not finished else ""
    raise UserError(f"output directory already holds {what}", where=str(out),
                    fix=f"{fix}pass --overwrite to replace it, or choose another --output-dir")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _predict_split(trainer: Trainer, split) -> tuple[Any, float]:
    """Trainer's predictions on ``split`` and the seconds they took."""
    start = time.perf_counter()
    out = trainer.predict(split.remove_columns(["length"]))
    return out, time.perf_counter() - start


def _eval_split(task: Task, predicted: tuple[Any, float], labels: list[str], calibration: dict[str, Any]
                ) -> dict[str, Any]:
    """The task's metrics of one split's predictions (:func:`_predict_split`), its loss and speed."""
    out, seconds = predicted
    metrics = task.score(np.asarray(out.predictions), np.asarray(out.label_ids), labels, calibration)
    metrics["loss"] = float(out.metrics.get("test_loss", float("nan")))
    metrics["sentences_per_second"] = len(out.label_ids) / seconds if seconds > 0 else None
    return metrics


def _save_model(trainer: Trainer, tokenizer: Any, target: Path, is_adapter: bool) -> None:
    """Save the final (best) model into ``target`` atomically: temp folder, then rename."""
    with atomic_dir(target, overwrite=True) as tmp:
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          data: TextDataset | None = None, progress: bool = True,
          callbacks: list[Any] | None = None) -> rundir.Run | None:
    """Fine-tune ``cfg.model`` on ``cfg.data`` with ``cfg.method`` and write ``cfg.output_dir``.

    Under ``torchrun`` / ``accelerate launch`` every rank trains and evaluates; rank 0 alone writes
    the run directory and returns it, the other ranks return ``None``. ``callbacks`` are extra
    Trainer callbacks (e.g. a benchmark's clock).

    One process writes an output directory at a time (:func:`rundir.writer_lock`); with
    ``overwrite`` an old run is deleted only once the new one's data, model and settings resolved."""
    out = Path(cfg.output_dir).expanduser()
    is_main = int(os.environ.get("RANK", "0")) == 0
    with rundir.writer_lock(out) if is_main else contextlib.nullcontext():
        return _train(cfg, out, is_main, resume=resume, overwrite=overwrite, data=data, progress=progress,
                      callbacks=callbacks)


def _train(cfg: TrainConfig, out: Path, is_main: bool, *, resume: bool, overwrite: bool, data: TextDataset | None,
           progress: bool, callbacks: list[Any] | None) -> rundir.Run | None:
    method, task = check(cfg)  # a wrong method, task or model fails here, before anything loads
    replace = _check_output_dir(out, resume, overwrite) if is_main else False
    setup = build(cfg, method, task, data)
    summary = setup.data.summary(setup.tokenizer)
    model = setup.load_model()
    trainable, total = count_params(model)
    log.info("%s on %s: %d of %d parameters trainable (%.2f%%), precision %s, device %s", method.name,
             setup.resolved.name, trainable, total, 100 * trainable / total, setup.precision, setup.device)

    _start_output_dir(out, replace=replace, resume=resume, is_main=is_main)
    timing, interrupt = TimingCallback(), InterruptCallback()
    callbacks = [timing, HistoryCallback(out / rundir.HISTORY, is_main), interrupt, *(callbacks or [])]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    args = training_arguments(cfg, out / rundir.CHECKPOINTS, learning_rate=setup.learning_rate,
                              precision=setup.precision, dev=setup.device, method=method,
                              run_name=cfg.run_name or out.name, progress=progress)
    trainer = setup.trainer(args, callbacks, model=model)

    start = time.perf_counter()
    result = _fit(trainer, interrupt, out, resume=resume, is_main=is_main)
    wall = time.perf_counter() - start

    predicted = {split: _predict_split(trainer, setup.encoded[split]) for split in ("validation", "test")}
    val_out = predicted["validation"][0]  # what the run needs to use the model (multi-label: thresholds)
    calibration = task.calibrate(np.asarray(val_out.predictions), np.asarray(val_out.label_ids), setup.labels)
    validation, test = (_eval_split(task, predicted[s], setup.labels, calibration) for s in ("validation", "test"))
    if not trainer.is_world_process_zero():
        return None
    for split, m in (("validation", validation), ("test", test)):  # the task's own, e.g. free generation
        m.update(task.split_metrics(trainer.model, setup.tokenizer, setup.encoded[split], cfg))

    _save_model(trainer, setup.tokenizer, out / rundir.MODEL_DIR, method.is_adapter)
    return _write_run(out, setup, trainer, model, summary=summary, result=result, timing=timing, wall=wall,
                      evaluation={"validation": validation, "test": test}, resume=resume, calibration=calibration)


def _start_output_dir(out: Path, *, replace: bool, resume: bool, is_main: bool) -> None:
    """Everything resolved: the old run goes now, not before; a fresh run starts a fresh history."""
    if replace:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if is_main and not resume and (out / rundir.HISTORY).exists():
        (out / rundir.HISTORY).unlink()


def _fit(trainer: Trainer, interrupt: InterruptCallback, out: Path, *, resume: bool, is_main: bool):
    """``trainer.train()``, from the last complete checkpoint with ``resume``; Ctrl-C saves a
    checkpoint and ends in :class:`TrainingInterrupted` (no metrics.json)."""
    checkpoint = rundir.last_checkpoint(out) if resume else None
    if checkpoint is not None:
        log.info("resuming from %s (step %s)", checkpoint, checkpoint.name.removeprefix("checkpoint-"))
        for torn in set((out / rundir.CHECKPOINTS).glob("checkpoint-*")) - set(rundir.checkpoints(out)):
            if is_main:  # cut short by a crash: it would only confuse Trainer's checkpoint rotation
                log.warning("removing incomplete checkpoint %s", torn)
                shutil.rmtree(torn, ignore_errors=True)
    try:
        with interrupt.installed():
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except Exception as exc:  # a corrupt checkpoint or a full disk is one line; anything else a bug
        error = training_failure(exc, out, checkpoint)
        if error is None:
            raise
        raise error from None
    if interrupt.requested:  # a checkpoint was saved at the step Ctrl-C arrived
        raise TrainingInterrupted(f"training stopped at step {trainer.state.global_step}; checkpoint saved in "
                                  f"{rundir.last_checkpoint(out)}. Continue with the same command plus --resume")
    return result


def _write_run(out: Path, setup: Setup, trainer: Trainer, model: torch.nn.Module, *, summary: dict[str, Any],
               result: Any, timing: TimingCallback, wall: float, evaluation: dict[str, dict[str, Any]],
               resume: bool, calibration: dict[str, Any] | None = None) -> rundir.Run:
    """Labels (and the task's calibration: multi-label thresholds), config, history, metrics, plots and
    card beside the saved model; metrics.json last."""
    cfg, method, labels = setup.cfg, setup.method, setup.labels
    calibration = calibration or {}
    write_json_atomic(out / rundir.LABELS, {"labels": labels, "label2id": setup.data.label2id, **calibration})
    resolved = {"learning_rate": trainer.args.learning_rate, "lora_alpha": cfg.resolved_lora_alpha,
                "precision": setup.precision,  # the settings as they resolved, then what the run records
                "pooling": setup.pooling, "metric_for_best_model": best_metric(cfg)}
    recorded = rundir.recorded_facts(model_path=setup.resolved.path, adapter=method.is_adapter) | {
        k: value(cfg) for k, value in method.records.items()}
    resolved_cfg = cfg.to_dict() | resolved | recorded
    write_text_atomic(out / rundir.CONFIG, yaml.safe_dump(resolved_cfg, sort_keys=False))
    history_path = out / rundir.HISTORY
    history = final_history(history_path, trainer.state.log_history)
    write_text_atomic(history_path, "".join(json.dumps(h) + "\n" for h in history))
    trainable, total = count_params(model)
    metrics = {
        "run": out.name, "method": method.name, "task": cfg.task,
        **setup.task.describe(setup.tokenizer, labels, cfg), **calibration,
        "model": setup.resolved.name, "model_path": setup.resolved.path, "data": setup.data.name, "labels": labels,
        **evaluation,
        "best_checkpoint_metric": trainer.state.best_metric,
        "training": _training_numbers(setup, trainer, result, timing, wall, resume),
        "params": {"trainable": trainable, "total": total, "trainable_percent": 100 * trainable / total},
        "peak_rss_bytes": _peak_rss_bytes(),
        "memory": base_weight_memory(model),  # the frozen base's bytes as stored (4-bit for qlora)
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
        "checkpoint_bytes": rundir.dir_bytes(out / rundir.MODEL_DIR),
        "data_summary": summary,
        **({"distillation": setup.distillation.record()} if setup.distillation else {}),
        "versions": rundir.library_versions(),
        "hardware": rundir.hardware(),
    }
    title = f"{setup.resolved.name} / {method.name}"
    if setup.task.confusion_matrix:
        plot_confusion_matrix(evaluation["test"]["confusion_matrix"], labels, out / "confusion_matrix.png",
                              f"{title}: test")
    plot_history(history, out / "loss.png", f"{title}: training curve")
    write_text_atomic(out / rundir.CARD, model_card(metrics, resolved_cfg, setup.task.card_line,
                                                    headline=setup.task.headline,
                                                    confusion_matrix=setup.task.confusion_matrix))
    if not cfg.keep_checkpoints:
        shutil.rmtree(out / rundir.CHECKPOINTS, ignore_errors=True)
    write_json_atomic(out / rundir.METRICS, metrics)  # last: marks the run finished
    return open_run(out)


def _training_numbers(setup: Setup, trainer: Trainer, result: Any, timing: TimingCallback, wall: float,
                      resume: bool) -> dict[str, Any]:
    """metrics.json's ``training``: time, throughput and the settings that shaped them."""
    train_tokens = int(np.sum(setup.encoded["train"]["length"]))
    cut = setup.encoded["train"]["truncated"] if "truncated" in setup.encoded["train"].column_names else None
    epochs_done = float(trainer.state.epoch or 0)
    steps = list(timing.step_seconds)
    return {
        "wall_seconds": wall,
        "train_runtime_seconds": result.metrics.get("train_runtime"),
        "epochs": epochs_done,
        "steps": trainer.state.global_step,
        "epoch_seconds": timing.epoch_seconds,
        "mean_epoch_seconds": float(np.mean(timing.epoch_seconds)) if timing.epoch_seconds else None,
        "mean_step_seconds": float(np.mean(steps)) if steps else None,
        "median_step_seconds": float(np.median(steps)) if steps else None,
        "train_tokens_per_epoch": train_tokens,
        "max_length": setup.cfg.max_length,  # training texts are truncated to it; how many were cut:
        "truncated_train_rows": None if cut is None else int(np.sum(cut)),
        "tokens_per_second": train_tokens * epochs_done / timing.train_seconds if timing.train_seconds else None,
        "samples_per_second": result.metrics.get("train_samples_per_second"),
        "learning_rate": trainer.args.learning_rate,
        "batch_size": setup.cfg.batch_size,
        "precision": setup.precision,
        "device": str(setup.device),
        "world_size": trainer.args.world_size,
        "resumed": resume,
    }


__all__ = ["train"]
