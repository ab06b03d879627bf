"""``train``: data + model + method -> a finished run directory, with HF Trainer doing the work.

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
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from attnlab import rundir, runtime
from attnlab.data import TextDataset, load_data
from attnlab.errors import UserError
from attnlab.evaluation.metrics import classification_metrics
from attnlab.evaluation.plots import plot_confusion_matrix, plot_history
from attnlab.io import atomic_dir, write_json_atomic, write_text_atomic
from attnlab.models import ResolvedModel, load_pretrained, resolve_model, suggested_learning_rate
from attnlab.training import text2text
from attnlab.training.callbacks import (
    HistoryCallback,
    InterruptCallback,
    TimingCallback,
    TrainingInterrupted,
    final_history,
)
from attnlab.training.card import model_card
from attnlab.training.config import TrainConfig
from attnlab.training.methods import Method, base_weight_memory, count_params, get_method
from attnlab.training.rundir import open_run

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
            raise UserError("nothing to resume: no checkpoint in the output directory", where=str(out),
                            fix="drop --resume to start a new run, or pass --overwrite")
        return False
    what = "a finished run" if finished else ("an unfinished run with checkpoints" if has_ckpt else "files")
    fix = "pass --resume to continue it, " if has_ckpt and not finished else ""
    raise UserError(f"output directory already holds {what}", where=str(out),
                    fix=f"{fix}pass --overwrite to replace it, or choose another --output-dir")


def tokenize(ds: TextDataset, tokenizer: Any, max_length: int):
    def encode(batch):
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    return ds.splits.map(encode, batched=True, remove_columns=["text"], desc="tokenizing")


def load_config_data(cfg: TrainConfig) -> TextDataset:
    """The data set ``cfg`` names, split and subsampled as its settings say."""
    return load_data(
        cfg.data, data_dir=cfg.data_dir, text_column=cfg.text_column, label_column=cfg.label_column,
        val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed,
        max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples)


def encode_splits(ds: TextDataset, tokenizer: Any, max_length: int, task: str = "classification",
                  prefix: str | None = None):
    """Tokenized splits (with a ``length`` column); validation and test sorted longest first.
    ``task="text2text"``: the label words become decoder targets (training/text2text.py)."""
    encoded = (text2text.tokenize(ds, tokenizer, max_length, prefix or "") if task == "text2text"
               else tokenize(ds, tokenizer, max_length))
    for split in ("validation", "test"):  # evaluation order is free: sort by length to pad less
        encoded[split] = encoded[split].sort("length", reverse=True)
    return encoded


def default_learning_rate(cfg: TrainConfig, resolved: ResolvedModel, method: Method) -> float:
    """``cfg.learning_rate``, else the model registry's rate for the method, else the method's default."""
    return cfg.learning_rate or suggested_learning_rate(resolved, method.name) or method.learning_rate


def load_model(cfg: TrainConfig, resolved: ResolvedModel, ds: TextDataset, tokenizer: Any, method: Method):
    """A freshly loaded sequence classifier for ``ds``'s labels, prepared by ``method`` (adapters
    added, layers frozen): the model Trainer trains. For text2text, the seq2seq model itself."""
    if cfg.task == "text2text":
        return method.prepare(text2text.load_model(resolved, method, cfg), cfg)
    labels = ds.labels
    model = load_pretrained(
        AutoModelForSequenceClassification.from_pretrained, resolved,
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=ds.label2id,
        ignore_mismatched_sizes=True, **({"dtype": torch.float32} | method.load_kwargs(cfg)))
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return method.prepare(model, cfg)


def metrics_function(labels: list[str]):
    """Trainer's ``compute_metrics``: accuracy and macro-F1 of the argmax predictions."""

    def compute_metrics(pred) -> dict[str, float]:
        preds = np.asarray(pred.predictions).argmax(-1)
        m = classification_metrics(np.asarray(pred.label_ids), preds, labels)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}

    return compute_metrics


def training_arguments(cfg: TrainConfig, output_dir: Path, *, learning_rate: float, precision: str,
                       dev: torch.device, method: Method, run_name: str, progress: bool = True,
                       **overrides: Any) -> TrainingArguments:
    """``TrainingArguments`` for ``cfg``; ``overrides`` replace any of them (``attnlab tune`` turns
    checkpointing off inside its trials)."""
    by_steps = cfg.eval_every_steps is not None
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy="steps" if by_steps else "epoch",
        save_strategy="steps" if by_steps else "epoch",
        eval_steps=cfg.eval_every_steps,
        save_steps=cfg.eval_every_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=cfg.metric_for_best_model,
        greater_is_better=cfg.metric_for_best_model != "loss",
        logging_steps=cfg.logging_steps,
        bf16=precision == "bf16",
        use_cpu=dev.type == "cpu",
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name="length",
        report_to=cfg.report_to or "none",
        run_name=run_name,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        label_names=["labels"],
        ddp_find_unused_parameters=False if method.is_adapter or method.name == "head" else None,
        torch_compile=cfg.torch_compile,
        **({"optim": cfg.optim} if cfg.optim else {}),
    )
    return TrainingArguments(**(kwargs | overrides))


def _logits_only(logits, labels):
    """Keep only the logits from a model output tuple: encoder-decoders (T5ForSequenceClassification)
    also return their encoder's hidden states, which would not stack across batches."""
    return logits[0] if isinstance(logits, tuple) else logits


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _eval_split(trainer: Trainer, split, labels: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    out = trainer.predict(split.remove_columns(["length"]))
    seconds = time.perf_counter() - start
    preds = np.asarray(out.predictions).argmax(-1)
    metrics = classification_metrics(np.asarray(out.label_ids), preds, labels)
    metrics["loss"] = float(out.metrics.get("test_loss", float("nan")))
    metrics["sentences_per_second"] = len(split) / seconds if seconds > 0 else None
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
    method = get_method(cfg.method)
    if cfg.task == "text2text":
        text2text.check(cfg)  # an encoder-only model or a head method fails here, before any loading
    replace = _check_output_dir(out, resume, overwrite) if is_main else False
    runtime.set_num_threads(cfg.num_threads)
    set_seed(cfg.seed)

    dataset = data or load_config_data(cfg)
    resolved = resolve_model(cfg.model)
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, resolved)
    summary = dataset.summary(tokenizer)
    labels = dataset.labels
    encoded = encode_splits(dataset, tokenizer, cfg.max_length, cfg.task, cfg.text_prefix)

    dev = runtime.device()
    precision = runtime.resolve_precision(cfg.precision, dev)
    model = load_model(cfg, resolved, dataset, tokenizer, method)
    trainable, total = count_params(model)
    log.info("%s on %s: %d of %d parameters trainable (%.2f%%), precision %s, device %s",
             method.name, resolved.name, trainable, total, 100 * trainable / total, precision, dev)

    if replace:  # everything resolved: the old run goes now, not before
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    history_path = out / rundir.HISTORY
    if is_main and not resume and history_path.exists():
        history_path.unlink()
    args = training_arguments(cfg, out / rundir.CHECKPOINTS,
                              learning_rate=default_learning_rate(cfg, resolved, method), precision=precision,
                              dev=dev, method=method, run_name=cfg.run_name or out.name, progress=progress)
    timing = TimingCallback()
    interrupt = InterruptCallback()
    callbacks = [timing, HistoryCallback(history_path, is_main), interrupt, *(callbacks or [])]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))

    trainer_cls, collator = (text2text.trainer_parts(tokenizer, labels, cfg.pad_to_multiple_of)
                             if cfg.task == "text2text" else
                             (Trainer,
                              DataCollatorWithPadding(tokenizer, pad_to_multiple_of=cfg.pad_to_multiple_of)))
    trainer = trainer_cls(
        model=model, args=args, train_dataset=encoded["train"],
        eval_dataset=encoded["validation"].remove_columns(["length"]),
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=metrics_function(labels), callbacks=callbacks,
        preprocess_logits_for_metrics=_logits_only)
    start = time.perf_counter()
    checkpoint = rundir.last_checkpoint(out) if resume else None
    if checkpoint is not None:
        log.info("resuming from %s (step %s)", checkpoint, checkpoint.name.removeprefix("checkpoint-"))
        for torn in set((out / rundir.CHECKPOINTS).glob("checkpoint-*")) - set(rundir.checkpoints(out)):
            if is_main:  # cut short by a crash: it would only confuse Trainer's checkpoint rotation
                log.warning("removing incomplete checkpoint %s", torn)
                shutil.rmtree(torn, ignore_errors=True)
    with interrupt.installed():
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if interrupt.requested:  # a checkpoint was saved at the step Ctrl-C arrived; no metrics.json
        raise TrainingInterrupted(f"training stopped at step {trainer.state.global_step}; checkpoint saved in "
                                  f"{rundir.last_checkpoint(out)}. Continue with the same command plus --resume")
    wall = time.perf_counter() - start

    validation = _eval_split(trainer, encoded["validation"], labels)
    test = _eval_split(trainer, encoded["test"], labels)
    if not trainer.is_world_process_zero():
        return None
    if cfg.task == "text2text":  # free generation too, beside the label scoring
        for m, split in ((validation, "validation"), (test, "test")):
            m["generation_exact_match"] = text2text.generation_exact_match(trainer.model, tokenizer, encoded[split],
                                                                           cfg.eval_batch_size)

    _save_model(trainer, tokenizer, out / rundir.MODEL_DIR, method.is_adapter)
    write_json_atomic(out / rundir.LABELS, {"labels": labels, "label2id": dataset.label2id})
    resolved_cfg = cfg.to_dict() | {"learning_rate": args.learning_rate, "lora_alpha": cfg.resolved_lora_alpha,
                                    "precision": precision, "model_path": resolved.path} | method.run_settings(cfg)
    write_text_atomic(out / rundir.CONFIG, yaml.safe_dump(resolved_cfg, sort_keys=False))
    history = final_history(history_path, trainer.state.log_history)
    write_text_atomic(history_path, "".join(json.dumps(h) + "\n" for h in history))
    train_tokens = int(np.sum(encoded["train"]["length"]))
    epochs_done = float(trainer.state.epoch or 0)
    steps = [s for s in timing.step_seconds]
    metrics = {
        "run": out.name,
        "method": method.name,
        "task": cfg.task,
        **({"text2text": text2text.describe(tokenizer, labels, cfg.text_prefix or "")} if cfg.task == "text2text"
           else {}),
        "model": resolved.name,
        "model_path": resolved.path,
        "data": dataset.name,
        "labels": labels,
        "validation": validation,
        "test": test,
        "best_checkpoint_metric": trainer.state.best_metric,
        "training": {
            "wall_seconds": wall,
            "train_runtime_seconds": result.metrics.get("train_runtime"),
            "epochs": epochs_done,
            "steps": trainer.state.global_step,
            "epoch_seconds": timing.epoch_seconds,
            "mean_epoch_seconds": float(np.mean(timing.epoch_seconds)) if timing.epoch_seconds else None,
            "mean_step_seconds": float(np.mean(steps)) if steps else None,
            "median_step_seconds": float(np.median(steps)) if steps else None,
            "train_tokens_per_epoch": train_tokens,
            "tokens_per_second": (train_tokens * epochs_done / timing.train_seconds
                                  if timing.train_seconds else None),
            "samples_per_second": result.metrics.get("train_samples_per_second"),
            "learning_rate": args.learning_rate,
            "batch_size": cfg.batch_size,
            "precision": precision,
            "device": str(dev),
            "world_size": args.world_size,
            "resumed": resume,
        },
        "params": {"trainable": trainable, "total": total, "trainable_percent": 100 * trainable / total},
        "peak_rss_bytes": _peak_rss_bytes(),
        "memory": base_weight_memory(model),  # the frozen base's bytes as stored (4-bit for qlora)
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
        "checkpoint_bytes": rundir.dir_bytes(out / rundir.MODEL_DIR),
        "data_summary": summary,
        "versions": rundir.library_versions(),
        "hardware": rundir.hardware(),
    }
    title = f"{resolved.name} / {method.name}"
    plot_confusion_matrix(test["confusion_matrix"], labels, out / "confusion_matrix.png", f"{title}: test")
    plot_history(history, out / "loss.png", f"{title}: training curve")
    write_text_atomic(out / rundir.CARD, model_card(metrics, resolved_cfg))
    if not cfg.keep_checkpoints:
        shutil.rmtree(out / rundir.CHECKPOINTS, ignore_errors=True)
    write_json_atomic(out / rundir.METRICS, metrics)  # last: marks the run finished
    return open_run(out)
