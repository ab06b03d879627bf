"""What a Trainer needs for one :class:`TrainConfig`, built in one place: the method and task, the data,
the model source and tokenizer, the encoded splits, device, precision and learning rate, the model
and the Trainer itself. ``train``, ``tune`` and the experiments build through here, so a trial, a
comparison row and a run train exactly the same thing.

::

    method, task = check(cfg)            # a wrong method, task or model fails before anything loads
    setup = build(cfg, method, task)     # data, tokenizer, encoded splits, device, precision
    trainer = setup.trainer(args, callbacks, model=setup.load_model())
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, TrainingArguments, set_seed

from attnlab import runtime
from attnlab.data import TextDataset, load_data
from attnlab.errors import UserError
from attnlab.models import ResolvedModel, load_pretrained, resolve_model, suggested_learning_rate
from attnlab.models.pooling import resolve_pooling
from attnlab.training import fast_dropout
from attnlab.training.config import TrainConfig
from attnlab.training.distill import Distillation, check_labels, check_teacher, prepare
from attnlab.training.methods import Method, get_method, methods_for_task
from attnlab.training.tasks import Task, best_metric, check_best_metric, get_task, greater_is_better


def load_config_data(cfg: TrainConfig) -> TextDataset:
    """The data set ``cfg`` names, split and subsampled as its settings say."""
    return load_data(
        cfg.data, data_dir=cfg.data_dir, text_column=cfg.text_column, label_column=cfg.label_column,
        val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed,
        max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples,
        label_kind=get_task(cfg.task).label_kind)


def check(cfg: TrainConfig) -> tuple[Method, Task]:
    """``cfg``'s method and task, once both are known to fit together and the task accepts the model
    (one-line UserErrors, before any data or weights load)."""
    method, task = get_method(cfg.method), get_task(cfg.task)
    if task.name not in method.tasks:
        raise UserError(f"method '{method.name}' does not apply to {task.name}", where="--method",
                        fix=f"pass --method {' or '.join(methods_for_task(task.name))} with --task {task.name}")
    check_best_metric(cfg, task)
    task.check(cfg)
    if cfg.teacher is not None:
        check_teacher(cfg)
    return method, task


def default_learning_rate(cfg: TrainConfig, resolved: ResolvedModel, method: Method) -> float:
    """``cfg.learning_rate``, else the model registry's rate for the method, else the method's default."""
    return cfg.learning_rate or suggested_learning_rate(resolved, method.name) or method.learning_rate


def encode_splits(ds: TextDataset, tokenizer: Any, cfg: TrainConfig, task: Task):
    """The task's tokenized splits (with a ``length`` column); validation and test sorted longest first.
    Train keeps a task's ``truncated`` column (rows cut at max_length, for metrics.json); Trainer drops it."""
    encoded = task.encode(ds, tokenizer, cfg)
    for split in ("validation", "test"):  # evaluation order is free: sort by length to pad less
        if "truncated" in encoded[split].column_names:
            encoded[split] = encoded[split].remove_columns(["truncated"])
        encoded[split] = encoded[split].sort("length", reverse=True)
    return encoded


def metrics_function(labels: list[str], task: Task | None = None):
    """Trainer's ``compute_metrics``: the task's logged metrics (classification: accuracy and macro-F1 of
    the argmax predictions); one undefined (a correlation of constant predictions) is logged as NaN."""
    task = task or get_task("classification")

    def compute_metrics(pred) -> dict[str, float]:
        m = task.score(np.asarray(pred.predictions), np.asarray(pred.label_ids), labels, {})
        return {k: float("nan") if m[k] is None else m[k] for k in task.logged}

    return compute_metrics


def logits_only(logits, labels):
    """Keep only the logits from a model output tuple: encoder-decoders (T5ForSequenceClassification)
    also return their encoder's hidden states, which would not stack across batches."""
    return logits[0] if isinstance(logits, tuple) else logits


def training_arguments(cfg: TrainConfig, output_dir: Path, *, learning_rate: float, precision: str,
                       dev: torch.device, method: Method, run_name: str, progress: bool = True,
                       **overrides: Any) -> TrainingArguments:
    """``TrainingArguments`` for ``cfg``; ``overrides`` replace any of them (``attnlab tune`` turns
    checkpointing off inside its trials)."""
    by_steps = cfg.eval_every_steps is not None
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=learning_rate, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio, lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy="steps" if by_steps else "epoch", save_strategy="steps" if by_steps else "epoch",
        eval_steps=cfg.eval_every_steps, save_steps=cfg.eval_every_steps, save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model=best_metric(cfg),
        greater_is_better=greater_is_better(best_metric(cfg)),
        logging_steps=cfg.logging_steps, bf16=precision == "bf16", use_cpu=dev.type == "cpu",
        seed=cfg.seed, data_seed=cfg.seed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random", length_column_name="length",
        report_to=cfg.report_to or "none", run_name=run_name, disable_tqdm=not progress,
        dataloader_num_workers=0, label_names=["labels"],
        ddp_find_unused_parameters=method.find_unused_parameters,
        torch_compile=cfg.torch_compile,
        **({"optim": cfg.optim} if cfg.optim else {}),
    )
    return TrainingArguments(**(kwargs | overrides))


@dataclass
class Setup:
    """Everything resolved for one config, before any model is built."""

    cfg: TrainConfig
    method: Method
    task: Task
    data: TextDataset
    resolved: ResolvedModel
    tokenizer: Any
    encoded: Any  # DatasetDict of the task's tokenized splits; validation and test longest first
    device: torch.device
    precision: str
    learning_rate: float
    distillation: Distillation | None = None  # with a teacher: its logits are encoded["train"]'s

    @property
    def labels(self) -> list[str]:
        return self.data.labels

    @functools.cached_property
    def pooling(self) -> str:
        """``cfg.pooling`` resolved once (the checkpoint's pooling config is a file read)."""
        return resolved_pooling(self.cfg, self.resolved, self.method)

    def load_model(self, cfg: TrainConfig | None = None) -> torch.nn.Module:
        """A fresh task model prepared by the method (adapters added, layers frozen): the model
        Trainer trains. ``cfg``: other settings for the method (a tune trial's LoRA rank)."""
        cfg = dataclasses.replace(cfg or self.cfg, pooling=self.pooling)
        model = self.task.build_model(cfg, self.resolved, self.data, self.tokenizer, self.method.load_kwargs(cfg))
        apply_model_dropout(model, cfg, self.device)
        return self.method.prepare(model, cfg)

    def trainer(self, args: TrainingArguments, callbacks: list[Any], **model: Any):
        """The task's Trainer on the encoded splits, with ``model=`` (train) or ``model_init=`` (tune)."""
        trainer_cls, collator = self.task.trainer_parts(self.tokenizer, self.labels, self.cfg)
        if self.distillation is not None:  # classification's Trainer, with the teacher's soft labels in the loss
            trainer_cls, collator = self.distillation.trainer_parts(collator)
        trainer = trainer_cls(
            args=args, train_dataset=self.encoded["train"],
            eval_dataset=self.encoded["validation"].remove_columns(["length"]), data_collator=collator,
            processing_class=self.tokenizer, compute_metrics=metrics_function(self.labels, self.task),
            callbacks=callbacks,
            preprocess_logits_for_metrics=logits_only, **model)
        # Trainer reads a forward(**kwargs) as "the model divides its loss by num_items_in_batch" and then
        # skips dividing by the accumulation steps; the models' own losses are plain batch means, so with
        # --gradient-accumulation-steps N the loss and gradients came out N times too large
        trainer.model_accepts_loss_kwargs = False
        return trainer


def apply_model_dropout(model: torch.nn.Module, cfg: TrainConfig, dev: torch.device) -> None:
    """The model's own dropout as ``cfg`` sets it: ``--dropout`` (if given) and, on a CPU, attnlab's
    cheaper mask (``training/fast_dropout.py``; ``--torch-dropout`` keeps torch's). Call it before the
    method adds adapters: theirs is ``--lora-dropout``, not the model's."""
    if cfg.dropout is not None:
        set_dropout(model, cfg.dropout, dev)
    if cfg.fast_dropout and dev.type == "cpu":
        fast_dropout.install(model)


def set_dropout(model: torch.nn.Module, p: float, dev: torch.device) -> None:
    """Every ``nn.Dropout`` of ``model`` at ``p`` (BERT-style attention passes its dropout module's
    ``p`` to SDPA). With no dropout, SDPA on a CPU switches to its flash kernel, whose backward is
    slower than plain attention at a classifier's short lengths (docs/speed.md measures it): the model
    then trains with eager attention."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    if p == 0 and dev.type == "cpu" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")


def resolved_pooling(cfg: TrainConfig, resolved: ResolvedModel, method: Method) -> str:
    """``cfg.pooling`` with ``auto`` replaced by the method's choice (``Method.auto_pooling``: the
    checkpoint's own pooling, or a fixed one); what the run records in config.yaml."""
    return resolve_pooling(cfg.pooling, resolved.path, method.auto_pooling)


def check_max_length(max_length: int, resolved: ResolvedModel, tokenizer: Any) -> None:
    """Refuse ``--max-length`` beyond what the model has positions for (a learned position table):
    training would crash on the first long batch, after the output folder was started."""
    from transformers import AutoConfig

    positions = getattr(load_pretrained(AutoConfig.from_pretrained, resolved), "max_position_embeddings", None)
    if not isinstance(positions, int):
        return  # relative positions (T5) or none recorded: nothing to check
    tokens = getattr(tokenizer, "model_max_length", None)  # RoBERTa-style tables reserve rows: trust the tokenizer
    limit = min(positions, tokens) if isinstance(tokens, int) and 0 < tokens < 1_000_000 else positions
    if max_length > limit:
        raise UserError(f"--max-length {max_length} is more than {resolved.name} has positions for ({limit})",
                        where="--max-length", fix=f"pass at most {limit}")


def build(cfg: TrainConfig, method: Method, task: Task, data: TextDataset | None = None) -> Setup:
    """Threads and seed set, then the data (``data``, else what ``cfg`` names), tokenizer and encoded
    splits (with a teacher: its logits on the training texts, :mod:`attnlab.training.distill`), device,
    precision and learning rate for ``cfg`` (checked by :func:`check`)."""
    runtime.set_num_threads(cfg.num_threads)
    set_seed(cfg.seed)
    data = data or load_config_data(cfg)
    teacher = check_labels(check_teacher(cfg), data) if cfg.teacher is not None else None
    resolved = resolve_model(cfg.model)
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, resolved)
    check_max_length(cfg.max_length, resolved, tokenizer)
    encoded = encode_splits(data, tokenizer, cfg, task)
    distillation = prepare(cfg, teacher, data, encoded) if teacher is not None else None
    dev = runtime.device()
    return Setup(cfg, method, task, data, resolved, tokenizer, encoded, dev,
                 runtime.resolve_precision(cfg.precision, dev), default_learning_rate(cfg, resolved, method),
                 distillation)


__all__ = ["Setup", "build", "check", "default_learning_rate", "encode_splits", "load_config_data", "logits_only",
           "metrics_function", "resolved_pooling", "training_arguments"]
