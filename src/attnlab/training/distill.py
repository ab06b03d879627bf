"""Knowledge distillation: a student learns from a finished teacher run's soft labels as well as from
the true ones (Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge in a Neural Network")::

    loss = alpha * T² * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

The T² keeps the soft term's gradients at the hard term's scale whatever the temperature T.

The teacher is any finished classification run on the same labels, with its own model, tokenizer,
pooling and precision (a fine-tuned mpnet-base teaching minilm-l6): its logits on the training texts
come from :mod:`attnlab.inference` (what ``attnlab predict`` runs), once, and are cached in the
teacher's run directory, keyed by the teacher run and the texts (``teacher-logits/*.npy``). They
ride into training as a column of the train split (:data:`TEACHER_COLUMN`), so each row carries its
own through shuffling and length grouping; :class:`DistillTrainer` takes them out of the batch
before the model sees it. Evaluation is unchanged: the student against the true labels.

::

    teacher = check_teacher(cfg)                          # one-line errors before anything loads
    check_labels(teacher, data)                           # once the data is read
    distillation = prepare(cfg, teacher, data, encoded)   # logits cached, added to encoded["train"]
    trainer_cls, collator = distillation.trainer_parts(collator)
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer

from attnlab import runtime
from attnlab.data import TextDataset
from attnlab.errors import UserError
from attnlab.inference.predictor import Predictor
from attnlab.io import write_bytes_atomic
from attnlab.rundir import METRICS, Run, open_run
from attnlab.training.config import TrainConfig

log = logging.getLogger(__name__)

TEACHER_COLUMN = "teacher_logits"  # the train split's column of the teacher's logits, one row per text
CACHE_FOLDER = "teacher-logits"  # in the teacher's run directory
CLASSIFICATION = "classification"  # the task distillation trains (soft labels over K classes)


# -- the teacher, checked at the edge --------------------------------------------------------------

def check_teacher(cfg: TrainConfig) -> Run:
    """The finished classification run ``cfg.teacher`` names, for a classification student written
    elsewhere; anything else is a one-line UserError (before any data or weights load)."""
    where = f"--teacher {cfg.teacher}"
    if cfg.task != CLASSIFICATION:
        raise UserError(f"distillation trains classifiers; --task {cfg.task} has no soft labels to learn from",
                        where="--task", fix="drop --teacher, or train with --task classification")
    path = Path(cfg.teacher).expanduser()
    if not path.is_dir():
        raise UserError("teacher run not found", where=where, fix="pass the --output-dir of a finished `attnlab train`")
    try:
        teacher = open_run(path)
    except UserError as exc:  # unfinished or corrupted: say it is the teacher
        raise UserError(f"teacher: {exc.what}", where=where, fix=exc.fix) from None
    if path.resolve() == Path(cfg.output_dir).expanduser().resolve():
        raise UserError("the teacher is the run being written", where=where,
                        fix="choose another --output-dir for the student")
    if teacher.task != CLASSIFICATION:
        raise UserError(f"the teacher is a {teacher.task} run, not a classifier", where=where,
                        fix="pass a run trained with --task classification")
    return teacher


def check_labels(teacher: Run, data: TextDataset) -> Run:
    """``teacher``, once its labels are the data's (the same names, in any order: :func:`prepare`
    puts its logits in the data's order); a one-line UserError otherwise, before the data is tokenized."""
    if sorted(teacher.labels) != sorted(data.labels):
        raise UserError(f"the teacher's labels ({', '.join(teacher.labels)}) are not the data's "
                        f"({', '.join(data.labels)})", where=f"--teacher {teacher.path}",
                        fix="pass a teacher trained on data with the same labels")
    return teacher


def teacher_precision(teacher: Run) -> str:
    """The precision the teacher's logits are computed in: the one it trained and evaluated in, fp32 or
    bf16, but bf16 only where this hardware does it natively (emulated bf16 is ~100x slower)."""
    return runtime.resolve_precision("fp32" if teacher.config.get("precision") == "fp32" else "auto")


# -- the teacher's logits, computed once -----------------------------------------------------------

def data_fingerprint(texts: list[str]) -> str:
    """A hash of the texts in row order: the same training texts, the same fingerprint."""
    h = hashlib.sha256()
    for text in texts:
        b = text.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def teacher_identity(teacher: Run) -> str:
    """A hash of the teacher's metrics.json, written last by each training: a run retrained in the same
    folder is another teacher; a run moved or copied is the same one."""
    return hashlib.sha256((teacher.path / METRICS).read_bytes()).hexdigest()


def cache_path(teacher: Run, texts: list[str], precision: str) -> Path:
    """Where the teacher's logits on ``texts`` are kept: its run directory's ``teacher-logits/``, one
    file per (data fingerprint, teacher identity, precision)."""
    name = f"{data_fingerprint(texts)[:16]}-{teacher_identity(teacher)[:12]}-{precision}.npy"
    return teacher.path / CACHE_FOLDER / name


class _LogitPredictor(Predictor):
    """The teacher's Predictor (its model, tokenizer, max_length, pooling), giving raw logits."""

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


def predict_logits(teacher: Run, texts: list[str], *, precision: str, batch_size: int) -> np.ndarray:
    """The teacher's logits (N, K) on ``texts``, in its label order, as ``attnlab predict`` computes them."""
    predictor = _LogitPredictor.from_run(teacher, precision=precision, batch_size=batch_size)
    return np.asarray(predictor.predict_proba(texts), dtype=np.float32)


def _read_cache(path: Path, rows: int, classes: int) -> np.ndarray | None:
    try:
        logits = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cached teacher logits %s: %s", path, exc)
        return None
    if logits.shape != (rows, classes) or not np.isfinite(logits).all():
        log.warning("ignoring cached teacher logits of the wrong shape or with non-finite values: %s", path)
        return None
    return logits.astype(np.float32, copy=False)


def teacher_logits(teacher: Run, texts: list[str], *, batch_size: int) -> tuple[np.ndarray, Path, bool]:
    """(the teacher's logits on ``texts``, their cache file, whether it was there already): computed once
    per (teacher, texts) and written atomically; a folder that refuses the write only costs the reuse."""
    precision = teacher_precision(teacher)
    path = cache_path(teacher, texts, precision)
    if path.is_file() and (cached := _read_cache(path, len(texts), len(teacher.labels))) is not None:
        log.info("teacher logits for %d texts read from %s", len(texts), path)
        return cached, path, True
    log.info("computing the teacher's logits on %d training texts (%s, %s)", len(texts), teacher.path, precision)
    logits = predict_logits(teacher, texts, precision=precision, batch_size=batch_size)
    buffer = io.BytesIO()
    np.save(buffer, logits, allow_pickle=False)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except UserError as exc:
        log.warning("teacher logits not cached (the next run computes them again): %s", exc)
    return logits, path, False


# -- the loss --------------------------------------------------------------------------------------

def distillation_loss(student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, *,
                      temperature: float, alpha: float, num_items_in_batch: Any = None) -> torch.Tensor:
    """``alpha * T² * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels)``
    per row, averaged over the batch, or summed over ``num_items_in_batch`` (Trainer's count of the
    rows of all accumulated batches, as the model's own loss is). ``teacher`` None: cross-entropy alone
    (evaluation). ``student``, ``teacher``: (B, K) logits; ``labels``: (B,) class ids."""
    student = student.float()  # (B, K); bf16 autocast gives bf16 logits
    per_row = F.cross_entropy(student, labels, reduction="none")  # (B,)
    if teacher is not None:
        t = temperature
        soft = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher.float() / t, dim=-1),
                        reduction="none", log_target=True).sum(-1)  # (B,) KL(teacher || student)
        per_row = alpha * t * t * soft + (1 - alpha) * per_row
    if num_items_in_batch is None:
        return per_row.mean()
    return per_row.sum() / num_items_in_batch


class TeacherCollator:
    """The task's collator for the model's inputs, with the rows' teacher logits stacked beside them
    as one (B, K) float tensor (evaluation batches have none: the task's collator alone)."""

    def __init__(self, collate: Any):
        self.collate = collate

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if TEACHER_COLUMN not in features[0]:
            return self.collate(features)
        teacher = torch.tensor([f[TEACHER_COLUMN] for f in features], dtype=torch.float32)
        batch = self.collate([{k: v for k, v in f.items() if k != TEACHER_COLUMN} for f in features])
        batch[TEACHER_COLUMN] = teacher
        return batch


class DistillTrainer(Trainer):
    """Trainer whose training loss is :func:`distillation_loss` (through ``compute_loss_func``, so Trainer
    normalises it for gradient accumulation and across processes as it does its own); batches without
    teacher logits (evaluation) get plain cross-entropy, the model's own loss."""

    def __init__(self, *args: Any, temperature: float, alpha: float, **kwargs: Any):
        super().__init__(*args, compute_loss_func=self._loss, **kwargs)
        self.temperature, self.alpha = temperature, alpha
        self._teacher: torch.Tensor | None = None

    def _set_signature_columns_if_needed(self) -> None:
        """Keep the teacher column: it is not an argument of the model's forward (Trainer drops those)."""
        super()._set_signature_columns_if_needed()
        if TEACHER_COLUMN not in self._signature_columns:
            self._signature_columns.append(TEACHER_COLUMN)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self._teacher = inputs.pop(TEACHER_COLUMN, None)  # this batch's, for _loss; never the model's input
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def _loss(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        return distillation_loss(outputs.logits, labels, self._teacher, temperature=self.temperature,
                                 alpha=self.alpha, num_items_in_batch=num_items_in_batch)


# -- into training ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Distillation:
    """A student's teacher and how it learns from it, once the teacher's logits are in the train split."""

    teacher: Run
    temperature: float
    alpha: float
    precision: str  # the teacher's logits were computed in
    cache: Path
    reused: bool  # the cache file was there already

    def trainer_parts(self, collate: Any) -> tuple[Any, TeacherCollator]:
        """(the Trainer class, the collator) that train on the teacher's logits beside the labels."""
        return functools.partial(DistillTrainer, temperature=self.temperature, alpha=self.alpha), (
            TeacherCollator(collate))

    def record(self) -> dict[str, Any]:
        """metrics.json's ``distillation``: the teacher, its own validation accuracy, T, alpha, the cache."""
        t = self.teacher
        return {"teacher": str(t.path.resolve()), "teacher_model": t.base_model,
                "teacher_method": t.config.get("method") or t.metrics.get("method"), "teacher_pooling": t.pooling,
                "teacher_validation_accuracy": (t.metrics.get("validation") or {}).get("accuracy"),
                "temperature": self.temperature, "alpha": self.alpha, "teacher_precision": self.precision,
                "teacher_logits": str(self.cache.resolve()), "teacher_logits_reused": self.reused}


def prepare(cfg: TrainConfig, teacher: Run, data: TextDataset, encoded: Any) -> Distillation:
    """The teacher's logits on ``data``'s training texts (cached) as ``encoded["train"]``'s
    :data:`TEACHER_COLUMN`, row by row (``encoded`` is changed in place), columns in the student's label order
    (``teacher`` has passed :func:`check_labels` on ``data``)."""
    order = [teacher.labels.index(name) for name in data.labels]
    texts = list(data.splits["train"]["text"])
    logits, path, reused = teacher_logits(teacher, texts, batch_size=cfg.eval_batch_size)
    if len(encoded["train"]) != len(texts):  # encoding maps row for row; a task that drops rows breaks this
        raise RuntimeError(f"{len(encoded['train'])} encoded training rows for {len(texts)} texts")
    from datasets import Sequence, Value

    encoded["train"] = encoded["train"].add_column(TEACHER_COLUMN, logits[:, order].tolist(),
                                                   feature=Sequence(Value("float32")))
    return Distillation(teacher, cfg.distill_temperature, cfg.distill_alpha, teacher_precision(teacher), path, reused)


__all__ = ["TEACHER_COLUMN", "DistillTrainer", "Distillation", "TeacherCollator", "check_labels", "check_teacher",
           "distillation_loss", "prepare", "teacher_logits"]
