"""What using a run of each task takes: the one place inference, ``attnlab merge`` and the server ask,
by the ``task`` the run recorded, instead of comparing task names.

The training side of a task (encoding, model, Trainer, metrics) is :mod:`attnlab.training.tasks`;
inference cannot import it (training is a sibling layer that imports torch, PEFT and the Trainer), so
what loading and prediction need of a task is written here, once. A task training gains is added
here too; until then its runs are refused in one line instead of being loaded as something else.
The module itself imports neither torch nor transformers (the Auto class and the Predictor are
looked up when asked for).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attnlab.errors import UserError
from attnlab.rundir import CONFIG, Run

if TYPE_CHECKING:
    from attnlab.inference.predictor import Predictor


@dataclass(frozen=True)
class RunTask:
    """How a run of one task is loaded and used."""

    name: str
    auto_model: str  # the transformers Auto class its model (merged: a plain folder) loads with
    sized_head: bool  # a classifier head sized by labels.json, read through the run's pooling
    engines: tuple[str, ...]  # the Predictor engines that run it
    draws_attention: bool  # explain's extractor takes its model (encoders and decoders; not seq2seq)
    predictor: Callable[[], type[Predictor]]  # the Predictor class (imported when asked: it imports torch)
    problem_type: str | None = None  # transformers' config.problem_type its sized head is built with
    classes: bool = True  # one label per text from K class probabilities (explain, compare and the UI read those)
    label_kind: str = "class"  # what an evaluation file's label column holds (attnlab.data.labels)
    # (true labels/targets, the predictor's outputs (N, K), labels, thresholds) -> metrics (attnlab.evaluation)
    score: Callable[[Any, Any, list[str], dict[str, float]], dict[str, Any]] = lambda *a: _class_score(*a)

    def model_class(self) -> Any:
        import transformers

        return getattr(transformers, self.auto_model)


def _classifier() -> type[Predictor]:
    from attnlab.inference.predictor import Predictor

    return Predictor


def _class_score(truth: Any, probs: Any, labels: list[str], thresholds: dict[str, float]) -> dict[str, Any]:
    from attnlab.evaluation.metrics import classification_metrics

    return classification_metrics(truth, probs.argmax(-1), labels)


def _regression_score(truth: Any, outputs: Any, labels: list[str], thresholds: dict[str, float]) -> dict[str, Any]:
    from attnlab.evaluation.metrics import regression_metrics

    return regression_metrics(truth, outputs[:, 0])


def _multilabel_score(truth: Any, probs: Any, labels: list[str], thresholds: dict[str, float]) -> dict[str, Any]:
    from attnlab.evaluation.metrics import multilabel_metrics

    return multilabel_metrics(truth, probs, labels, [thresholds.get(n, 0.5) for n in labels])


def _regression() -> type[Predictor]:
    from attnlab.inference.scored import RegressionPredictor

    return RegressionPredictor


def _multilabel() -> type[Predictor]:
    from attnlab.inference.scored import MultiLabelPredictor

    return MultiLabelPredictor


def _text2text() -> type[Predictor]:
    from attnlab.inference.text2text import Text2TextPredictor

    return Text2TextPredictor


TASKS: dict[str, RunTask] = {t.name: t for t in (
    RunTask("classification", "AutoModelForSequenceClassification", sized_head=True,
            engines=("torch", "onnxruntime"), draws_attention=True, predictor=_classifier),
    # a seq2seq model scores each label word with its LM head (attnlab.inference.text2text)
    RunTask("text2text", "AutoModelForSeq2SeqLM", sized_head=False, engines=("torch",), draws_attention=False,
            predictor=_text2text),
    # the same sequence classifier: one output read as the score, or one sigmoid per label
    # (attnlab.inference.scored); labels.json names the target, or holds the labels and their thresholds
    RunTask("regression", "AutoModelForSequenceClassification", sized_head=True, engines=("torch", "onnxruntime"),
            draws_attention=True, predictor=_regression, problem_type="regression", classes=False, label_kind="score",
            score=_regression_score),
    RunTask("multi-label", "AutoModelForSequenceClassification", sized_head=True, engines=("torch", "onnxruntime"),
            draws_attention=True, predictor=_multilabel, problem_type="multi_label_classification", classes=False,
            label_kind="multi", score=_multilabel_score),
)}


def require_classes(run: Run, what: str) -> RunTask:
    """The run's task, when its predictions are classes (one label per text); a one-line UserError naming
    ``what`` (a command or view) for a regression or multi-label run."""
    task = run_task(run)
    if not task.classes:
        raise UserError(f"{what} reads one class per text; this run's task is {task.name}",
                        where=str(run.path / CONFIG),
                        fix="pass a classification run, or use attnlab predict / evaluate for this one")
    return task


def run_task(run: Run) -> RunTask:
    """The :class:`RunTask` of the task ``run`` recorded; a one-line UserError for one unknown here."""
    task = TASKS.get(run.task)
    if task is None:
        raise UserError(f"config.yaml has task {run.task!r}, which this attnlab cannot load (it loads "
                        f"{', '.join(TASKS)})", where=str(run.path / CONFIG),
                        fix="load the run with the attnlab version that trained it, or re-run training")
    return task


__all__ = ["TASKS", "RunTask", "require_classes", "run_task"]
