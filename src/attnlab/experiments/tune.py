"""``tune``: hyperparameter search with Hugging Face Trainer's ``hyperparameter_search`` and its
Optuna backend.

One Trainer with a ``model_init``, built like ``attnlab train``'s (:mod:`attnlab.training.build`):
every trial loads a fresh model (with the trial's LoRA rank and alpha, for a method that takes
them), trains with the trial's learning rate, epochs, batch size and warmup, and
reports its validation metric; Optuna's TPE sampler (seeded) proposes the next trial. Data are
loaded and tokenized once. Trials save no checkpoints; a trial's objective is its best evaluation,
the checkpoint ``attnlab train`` keeps (``load_best_model_at_end``) with the same settings.

Writes to ``output_dir``:

* ``best.yaml``  the base settings with the best trial's merged in, a recipe for
  ``attnlab train --config best.yaml -o RUN``
* ``trials.md``, ``trials.csv``, ``trials.json``  one row per trial: its settings, objective,
  seconds and state
* ``trials.png``  the objective per trial with the best so far, and against the learning rate

The search space lives in :mod:`~attnlab.experiments.tune_space`, the written results in
:mod:`~attnlab.experiments.tune_report`.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attnlab.errors import UserError
from attnlab.experiments.tune_report import fmt_params, markdown_table, write_results
from attnlab.experiments.tune_space import (
    SEARCHABLE,
    Choice,
    Range,
    Spec,
    cast,
    default_space,
    parse_search,
    resolve_space,
    suggest,
)
from attnlab.models import resolve_model
from attnlab.training.build import Setup, build, check, default_learning_rate, training_arguments
from attnlab.training.config import TrainConfig
from attnlab.training.tasks import best_metric, greater_is_better

log = logging.getLogger(__name__)

OUTPUTS = ("best.yaml", "trials.md", "trials.csv", "trials.json", "trials.png")


@dataclass
class Search:
    """One search: the base settings, what is searched, how trials are scored, where the study lives."""

    base: TrainConfig
    space: dict[str, Range | Choice]
    learning_rate: float  # the method's (or the base's) rate: the centre of the default range
    out: Path
    study_name: str
    storage: Any  # an Optuna storage, once the study opened in it
    storage_shown: str | None  # its URL as written down (no password)
    n_trials: int
    timeout: float | None
    setup: Setup | None = None  # data, tokenizer, encoded splits: built once the study opened

    @property
    def metric(self) -> str:
        return best_metric(self.base)

    @property
    def greater(self) -> bool:
        return greater_is_better(self.metric)

    @property
    def direction(self) -> str:
        return "maximize" if self.greater else "minimize"

    @property
    def best_yaml(self) -> Path:
        return self.out / "best.yaml"


def _hide_password(url: str | None) -> str | None:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``: URLs get written down."""
    return re.sub(r"(//[^:/@]*:)[^/]*@", r"\1***@", url) if url else url


@contextmanager
def _quiet(optuna: Any):
    """Optuna's own INFO lines off (tune logs a line per trial instead); its warnings stay."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


# -- trial bookkeeping ----------------------------------------------------------------------------

def _trial_callbacks(metric: str, greater: bool, patience: int | None):
    from transformers import EarlyStoppingCallback, TrainerCallback

    key = f"eval_{metric}"

    class TrialLog(TrainerCallback):
        """A log line when a trial starts (its settings) and when it ends (its best metric, seconds)."""

        start = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()
            if state.trial_params is not None:
                log.info("%s: %s", state.trial_name or "trial", fmt_params(state.trial_params))

        def on_train_end(self, args, state, control, **kwargs):
            seen = [h[key] for h in state.log_history if key in h]
            best = (max if greater else min)(seen) if seen else float("nan")
            log.info("%s: best validation %s %.4f after %d steps, %.1f s", state.trial_name or "trial", metric,
                     best, state.global_step, time.perf_counter() - self.start)

    class TrialEarlyStopping(EarlyStoppingCallback):
        """Early stopping that starts each trial afresh (the stock callback keeps its counter across
        ``train()`` calls) and needs no checkpoints: a trial's objective is its best evaluation."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.early_stopping_patience_counter = 0

    return [TrialLog(), *([TrialEarlyStopping(early_stopping_patience=patience)] if patience else [])]




def _optuna(n_trials: Any, timeout: Any):
    """Optuna, once the trial budget is known to be valid."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise UserError(f"{n_trials!r} trials", where="--trials", fix="pass a whole number >= 1")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise UserError(f"timeout {timeout!r} is not a positive number of seconds", where="--timeout",
                        fix="pass e.g. 3600, or omit it")
    try:
        import optuna
    except ImportError:
        raise UserError("attnlab tune needs Optuna, which is not installed", where="attnlab tune",
                        fix="pip install 'attnlab[tune]' (or pip install optuna)") from None
    return optuna


def _open_storage(optuna: Any, url: str | None, name: str, direction: str) -> Any:
    """The study's storage, with the study opened (or created) in it: a bad URL fails before anything loads."""
    try:
        store = optuna.storages.get_storage(url) if url else optuna.storages.InMemoryStorage()
        with _quiet(optuna):
            optuna.create_study(storage=store, study_name=name, direction=direction, load_if_exists=True)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"could not open the Optuna study: {detail}", where=f"--storage {_hide_password(url)}",
                        fix="pass a storage URL such as sqlite:///tune.db, and a --study-name whose direction "
                            f"({direction}) matches") from None
    return store


def tune(base: TrainConfig, n_trials: int = 10, output_dir: str | Path = "runs/tune", *, timeout: float | None = None,
         space: dict[str, Any] | None = None, fixed: Iterable[str] = (), overwrite: bool = False,
         progress: bool = True, storage: str | None = None, study_name: str | None = None,
         sampler: Any = None, pruner: Any = None, data: Any = None) -> dict[str, Any] | None:
    """Search ``base``'s hyperparameters with ``Trainer.hyperparameter_search`` (Optuna) for
    ``n_trials`` trials (or until ``timeout`` seconds have passed: the running trial finishes),
    maximising the validation ``base.metric_for_best_model`` (minimising it for ``loss``).

    ``space`` updates :func:`default_space` (``{"batch_size": [16, 32], "lora_r": None}``);
    ``fixed`` names settings held at ``base``'s value. ``storage`` (an Optuna storage URL such as
    ``sqlite:///tune.db``) with ``study_name`` keeps the study on disk: another process or machine
    pointed at the same study adds its trials to it. The sampler is TPE seeded with ``base.seed``;
    ``pruner`` defaults to none. Returns the ``trials.json`` content plus ``table`` and ``best_yaml``
    (``None`` on the non-zero ranks of a distributed run).
    """
    optuna = _optuna(n_trials, timeout)
    base.validate()
    method, task = check(base)
    fixed = list(dict.fromkeys(n.replace("-", "_") for n in fixed))
    lr0 = default_learning_rate(base, resolve_model(base.model), method)
    searched = resolve_space(base, method.lora_settings, lr0, space, fixed)
    out = Path(output_dir).expanduser()
    if storage is None and not overwrite and (out / "trials.json").exists():
        raise UserError("output directory already holds a search", where=str(out),
                        fix="pass --overwrite to replace it, choose another --output-dir, or keep the study in "
                            "--storage to add trials to it")
    search = Search(base, searched, lr0, out, study_name or f"attnlab-tune-{out.name}", None,
                    _hide_password(storage), n_trials, timeout)
    search.storage = _open_storage(optuna, storage, search.study_name, search.direction)
    out.mkdir(parents=True, exist_ok=True)
    search.setup = build(base, method, task, data)

    sampler = sampler or optuna.samplers.TPESampler(seed=base.seed, n_startup_trials=min(10, max(3, n_trials // 3)))
    log.info("tuning %s on %s with %s: %d trial(s) over %s; objective: validation %s (%s)", method.name,
             search.setup.resolved.name, search.setup.data.name, n_trials,
             ", ".join(f"{k} {v.describe()}" for k, v in searched.items()), search.metric, search.direction)
    start = time.perf_counter()
    trainer, best_run, interrupted = _run_trials(search, optuna, sampler, pruner, progress)
    wall = time.perf_counter() - start
    if (trainer is not None and not trainer.is_world_process_zero()) or (best_run is None and not interrupted):
        return None
    study = optuna.load_study(study_name=search.study_name, storage=search.storage)
    result = write_results(search, study, sampler=sampler, wall=wall, interrupted=interrupted)
    best = result["best"]
    log.info("best: trial %d, validation %s %.4f, %s; recipe: %s", best["trial"], search.metric, best["objective"],
             fmt_params(best["params"]), search.best_yaml)
    if interrupted:
        finished = sum(t["state"] == "complete" for t in result["trials"])
        raise KeyboardInterrupt(f"search stopped after {finished} finished trial(s); results so far in {search.out}")
    return result


def _run_trials(search: Search, optuna: Any, sampler: Any, pruner: Any, progress: bool):
    """(trainer, best run, interrupted): one Trainer whose ``model_init`` builds each trial's model,
    searched by ``hyperparameter_search``. Trials save nothing; Ctrl-C keeps the finished trials."""
    base, setup, key = search.base, search.setup, f"eval_{search.metric}"

    def model_init(trial=None):
        cfg = base
        if trial is not None:  # Trainer builds the model before it applies hp_space: ask the trial now
            picked = suggest(trial, search.space)
            cfg = replace(base, **{k: cast(k, v) for k, v in picked.items() if SEARCHABLE[k] is None})
        return setup.load_model(cfg)

    def hp_space(trial) -> dict[str, Any]:
        picked = suggest(trial, search.space)
        return {SEARCHABLE[k]: cast(k, v) for k, v in picked.items() if SEARCHABLE[k] is not None}

    def objective(metrics: dict[str, float]) -> float:
        """The best evaluation of the trial so far (Trainer calls this after every evaluation)."""
        seen = [h[key] for h in trainer.state.log_history if key in h] + [metrics[key]]
        return float((max if search.greater else min)(seen))

    trial_dir = Path(tempfile.mkdtemp(dir=search.out, prefix=".trials-"))  # nothing is saved there; removed below
    trainer = best_run = None
    with _quiet(optuna):
        try:
            args = training_arguments(
                base, trial_dir, learning_rate=float(search.learning_rate), precision=setup.precision,
                dev=setup.device, method=setup.method, run_name=base.run_name or search.out.name, progress=progress,
                save_strategy="no", load_best_model_at_end=False, save_total_limit=None, report_to="none",
                # floats, because Trainer casts each trial's value to the type of the base one
                num_train_epochs=float(base.epochs), warmup_steps=float(base.warmup_ratio),
                weight_decay=float(base.weight_decay))
            callbacks = _trial_callbacks(search.metric, search.greater, base.early_stopping_patience)
            trainer = setup.trainer(args, callbacks, model_init=model_init)
            best_run = trainer.hyperparameter_search(
                hp_space=hp_space, compute_objective=objective, n_trials=search.n_trials, direction=search.direction,
                backend="optuna", hp_name=lambda t: f"trial {t.number}", timeout=search.timeout, sampler=sampler,
                pruner=pruner or optuna.pruners.NopPruner(), storage=search.storage, study_name=search.study_name,
                load_if_exists=True)
        except KeyboardInterrupt:  # keep what finished: Optuna marks the running trial failed
            return trainer, best_run, True
        finally:
            shutil.rmtree(trial_dir, ignore_errors=True)
    return trainer, best_run, False


__all__ = ["OUTPUTS", "SEARCHABLE", "Choice", "Range", "Search", "Spec", "default_space", "fmt_params",
           "markdown_table", "parse_search", "resolve_space", "tune"]
