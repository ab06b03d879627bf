"""``tune``: hyperparameter search with Hugging Face Trainer's ``hyperparameter_search`` and its
Optuna backend.

One Trainer with a ``model_init``: every trial loads a fresh model (with the trial's LoRA rank and
alpha for lora/qlora), trains with the trial's learning rate, epochs, batch size and warmup, and
reports its validation metric; Optuna's TPE sampler (seeded) proposes the next trial. Data are
loaded and tokenized once. Trials save no checkpoints; a trial's objective is its best evaluation,
the checkpoint ``attnlab train`` keeps (``load_best_model_at_end``) with the same settings.

Writes to ``output_dir``:

* ``best.yaml``  the base settings with the best trial's merged in, a recipe for
  ``attnlab train --config best.yaml -o RUN``
* ``trials.md``, ``trials.csv``, ``trials.json``  one row per trial: its settings, objective,
  seconds and state
* ``trials.png``  the objective per trial with the best so far, and against the learning rate
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from attnlab.errors import UserError
from attnlab.evaluation.plots import plt, save_figure
from attnlab.io import write_json_atomic, write_text_atomic
from attnlab.rundir import hardware, library_versions
from attnlab.training.config import TrainConfig

log = logging.getLogger(__name__)

OUTPUTS = ("best.yaml", "trials.md", "trials.csv", "trials.json", "trials.png")


@dataclass(frozen=True)
class Range:
    """Sample between ``low`` and ``high`` (integers for integer settings); ``log``: log-uniformly."""

    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"{_fmt_value(self.low)} .. {_fmt_value(self.high)}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Choice:
    """Sample one of ``values``."""

    values: tuple

    def describe(self) -> str:
        return "{" + ", ".join(_fmt_value(v) for v in self.values) + "}"


Spec = Range | Choice | None  # None: not searched, the base config's value is used

# setting -> the TrainingArguments field a trial sets (None: applied when the model is built)
SEARCHABLE: dict[str, str | None] = {
    "learning_rate": "learning_rate", "epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size",
    "warmup_ratio": "warmup_steps", "weight_decay": "weight_decay",
    "lora_r": None, "lora_alpha": None, "lora_dropout": None,
}
INTEGER = frozenset({"epochs", "batch_size", "lora_r", "lora_alpha"})
ADAPTER_ONLY = frozenset({"lora_r", "lora_alpha", "lora_dropout"})


# -- the search space ---------------------------------------------------------------------------

def default_space(base: TrainConfig, is_adapter: bool, learning_rate: float) -> dict[str, Spec]:
    """The default search space around ``base``: learning rate log-uniform within 5x of
    ``learning_rate`` (the method's default), epochs around ``base.epochs`` (not searched when
    ``max_steps`` fixes the budget), batch size half/same/double, warmup 0-20%; for adapters also
    LoRA rank and alpha."""
    e = base.epochs
    low = max(1, math.floor(e / 2))
    b = base.batch_size
    space: dict[str, Spec] = {
        "learning_rate": Range(learning_rate / 5, min(learning_rate * 5, 0.5), log=True),
        "epochs": None if base.max_steps > 0 else Range(low, max(low + 1, math.ceil(1.5 * e))),
        "batch_size": Choice(tuple(sorted({max(1, b // 2), b, 2 * b}))),
        "warmup_ratio": Range(0.0, 0.2),
    }
    if is_adapter:
        space["lora_r"] = Choice(tuple(sorted({4, 8, 16, 32, base.lora_r})))
        space["lora_alpha"] = Choice(tuple(sorted({8, 16, 32, 64, base.resolved_lora_alpha})))
    return space


def parse_search(items: Iterable[str] | None) -> dict[str, Spec]:
    """``["learning_rate=1e-5..1e-3", "batch_size=16,32", "lora_r=off"]`` -> a space override:
    ``LOW..HIGH`` a range (log-uniform for the learning rate), ``A,B,C`` a choice, ``off`` not
    searched."""
    out: dict[str, Spec] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        value = value.strip()
        if not sep or not name or not value:
            raise UserError(f"'{item}' is not NAME=LOW..HIGH, NAME=A,B,C or NAME=off", where="--search",
                            fix="e.g. --search learning_rate=1e-5..1e-3 --search batch_size=16,32")
        if name not in SEARCHABLE:
            raise UserError(f"'{name}' cannot be searched", where="--search", fix=f"pick from {', '.join(SEARCHABLE)}")
        cast = int if name in INTEGER else float
        try:
            if value.lower() in ("off", "none", "fixed"):
                out[name] = None
            elif ".." in value:
                lo, _, hi = value.partition("..")
                out[name] = Range(cast(lo), cast(hi), log=name == "learning_rate")
            else:
                out[name] = Choice(tuple(dict.fromkeys(cast(v) for v in value.split(",") if v.strip())))
        except ValueError:
            kind = "integers" if cast is int else "numbers"
            raise UserError(f"'{value}' is not a range or list of {kind}", where=f"--search {name}",
                            fix=f"e.g. {name}=LOW..HIGH or {name}=A,B,C") from None
    return out


def _normalise(name: str, spec: Any) -> Spec:
    if spec is None or isinstance(spec, Range | Choice):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:  # shorthand: (low, high)
        return Range(spec[0], spec[1], log=name == "learning_rate")
    if isinstance(spec, list):  # shorthand: [a, b, c]
        return Choice(tuple(spec))
    raise UserError(f"search space for {name} is {spec!r}", where="space",
                    fix="pass Range(low, high), Choice((a, b)), (low, high), [a, b] or None")


def resolve_space(base: TrainConfig, is_adapter: bool, learning_rate: float, space: dict[str, Any] | None = None,
                  fixed: Iterable[str] = ()) -> dict[str, Range | Choice]:
    """The searched settings: :func:`default_space`, updated by ``space``, minus ``fixed`` names
    (held at ``base``'s value). Every range end and choice is checked against the config's own
    validation, so a bad space fails before the first trial."""
    space = dict(space or {})
    method = base.method
    for name in [*space, *fixed]:
        if name not in SEARCHABLE:
            raise UserError(f"'{name}' cannot be searched", where="--search", fix=f"pick from {', '.join(SEARCHABLE)}")
        if name in ADAPTER_ONLY and not is_adapter and (name in fixed or space.get(name) is not None):
            raise UserError(f"{name} is a LoRA setting; method {method} has no adapters",
                            where=f"--{name.replace('_', '-')}", fix="drop it, or tune --method lora or qlora")
    both = sorted(set(space) & set(fixed))
    if both:
        raise UserError(f"{both[0]} is both fixed by a flag and searched", where="--search",
                        fix=f"drop --{both[0].replace('_', '-')} or --search {both[0]}=...")
    merged = default_space(base, is_adapter, learning_rate) | {k: _normalise(k, v) for k, v in space.items()}
    out: dict[str, Range | Choice] = {}
    for name, spec in merged.items():
        if spec is None or name in fixed:
            continue
        values = list(spec.values) if isinstance(spec, Choice) else [spec.low, spec.high]
        if isinstance(spec, Choice) and not values:
            raise UserError(f"empty choice for {name}", where="--search", fix="list at least one value")
        if isinstance(spec, Range) and not spec.low < spec.high:
            raise UserError(f"range for {name} is empty: {spec.low} .. {spec.high}", where="--search",
                            fix="give LOW < HIGH")
        if isinstance(spec, Range) and spec.log and spec.low <= 0:
            raise UserError(f"log range for {name} starts at {spec.low}", where="--search", fix="give LOW > 0")
        for v in values:
            if name in INTEGER and (isinstance(v, bool) or not float(v).is_integer()):
                raise UserError(f"{name} takes integers, not {v!r}", where="--search", fix="give whole numbers")
            try:
                replace(base, **{name: _cast(name, v)}).validate()
            except UserError as exc:
                raise UserError(f"search space for {name}: {exc.what}", where="--search", fix=exc.fix) from None
        out[name] = spec
    if not out:
        raise UserError("nothing to search: every setting is fixed", where="attnlab tune",
                        fix="leave at least one of " + ", ".join(SEARCHABLE) + " unfixed")
    return out


def _cast(name: str, v: Any) -> Any:
    if name in INTEGER:
        return float(int(v)) if name == "epochs" else int(v)
    return float(v)


def _suggest(trial: Any, space: dict[str, Range | Choice]) -> dict[str, Any]:
    """The trial's value for every searched setting (Optuna returns the same value when asked twice)."""
    out = {}
    for name, spec in space.items():
        if isinstance(spec, Choice):
            out[name] = trial.suggest_categorical(name, list(spec.values))
        elif name in INTEGER:
            out[name] = trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
        else:
            out[name] = trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.log)
    return out


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
                log.info("%s: %s", state.trial_name or "trial", _fmt_params(state.trial_params))

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


def _rows(study: Any, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else None
        rows.append({"trial": t.number, **{n: t.params.get(n) for n in names}, "objective": t.value,
                     "seconds": seconds, "state": t.state.name.lower()})
    return rows


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2e}" if v and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.4g}"
    return str(v)


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def markdown_table(rows: list[dict[str, Any]], names: list[str], metric: str, best: int | None) -> str:
    head = ["trial", *names, f"val {metric}", "seconds", "state"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [f"**{r['trial']}** (best)" if r["trial"] == best else str(r["trial"])]
        cells += ["-" if r[n] is None else _fmt_value(r[n]) for n in names]
        cells.append("-" if r["objective"] is None else f"{r['objective']:.4f}")
        cells.append("-" if r["seconds"] is None else f"{r['seconds']:.1f}")
        cells.append(r["state"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(rows: list[dict[str, Any]], metric: str, greater: bool, best: int | None, path: Path) -> None:
    from matplotlib.ticker import MaxNLocator, NullFormatter

    done = [r for r in rows if r["objective"] is not None]
    with_lr = any(r.get("learning_rate") is not None for r in done)
    fig, axes = plt.subplots(1, 2 if with_lr else 1, figsize=(11 if with_lr else 6, 4), squeeze=False)
    ax = axes[0][0]
    xs = [r["trial"] for r in done]
    ys = [r["objective"] for r in done]
    ax.scatter(xs, ys, color="tab:blue", label="trial", zorder=3)
    running, so_far = [], None
    for y in ys:
        so_far = y if so_far is None else (max if greater else min)(so_far, y)
        running.append(so_far)
    ax.step(xs, running, where="post", color="tab:orange", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("objective per trial")
    ax.legend(fontsize=8)
    if with_lr:
        ax = axes[0][1]
        pts = [(r["learning_rate"], r["objective"], r["trial"] == best) for r in done]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="tab:blue")
        for lr, y, is_best in pts:
            if is_best:
                ax.scatter([lr], [y], marker="*", s=200, color="tab:red", label="best", zorder=3)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel(f"validation {metric}")
        ax.set_title("objective vs learning rate")
        ax.legend(fontsize=8)
    save_figure(fig, path)


# -- the search ---------------------------------------------------------------------------------

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
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, set_seed

    from attnlab import runtime
    from attnlab.models import load_pretrained, resolve_model
    from attnlab.training import text2text
    from attnlab.training.methods import get_method
    from attnlab.training.train import (
        default_learning_rate,
        encode_splits,
        load_config_data,
        load_model,
        metrics_function,
        training_arguments,
    )

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
    base.validate()
    method = get_method(base.method)
    if base.task == "text2text":
        text2text.check(base)
    fixed = list(dict.fromkeys(n.replace("-", "_") for n in fixed))
    resolved = resolve_model(base.model)
    lr0 = default_learning_rate(base, resolved, method)
    search = resolve_space(base, method.is_adapter, lr0, space, fixed)
    names = list(search)
    out = Path(output_dir).expanduser()
    if storage is None and not overwrite and (out / "trials.json").exists():
        raise UserError("output directory already holds a search", where=str(out),
                        fix="pass --overwrite to replace it, choose another --output-dir, or keep the study in "
                            "--storage to add trials to it")
    metric = base.metric_for_best_model
    greater = metric != "loss"
    direction = "maximize" if greater else "minimize"
    name = study_name or f"attnlab-tune-{out.name}"
    try:  # open (or create) the study now: a bad storage URL fails before anything loads
        store = optuna.storages.get_storage(storage) if storage else optuna.storages.InMemoryStorage()
        with _quiet(optuna):
            optuna.create_study(storage=store, study_name=name, direction=direction, load_if_exists=True)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"could not open the Optuna study: {detail}", where=f"--storage {_hide_password(storage)}",
                        fix="pass a storage URL such as sqlite:///tune.db, and a --study-name whose direction "
                            f"({direction}) matches") from None
    out.mkdir(parents=True, exist_ok=True)

    runtime.set_num_threads(base.num_threads)
    set_seed(base.seed)
    dataset = data or load_config_data(base)
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, resolved)
    encoded = encode_splits(dataset, tokenizer, base.max_length, base.task, base.text_prefix)
    dev = runtime.device()
    precision = runtime.resolve_precision(base.precision, dev)
    key = f"eval_{metric}"

    def model_init(trial=None):
        cfg = base
        if trial is not None:  # Trainer builds the model before it applies hp_space: ask the trial now
            picked = _suggest(trial, search)
            cfg = replace(base, **{k: _cast(k, v) for k, v in picked.items() if SEARCHABLE[k] is None})
        return load_model(cfg, resolved, dataset, tokenizer, method)

    def hp_space(trial) -> dict[str, Any]:
        picked = _suggest(trial, search)
        return {SEARCHABLE[k]: _cast(k, v) for k, v in picked.items() if SEARCHABLE[k] is not None}

    def objective(metrics: dict[str, float]) -> float:
        """The best evaluation of the trial so far (Trainer calls this after every evaluation)."""
        seen = [h[key] for h in trainer.state.log_history if key in h] + [metrics[key]]
        return float((max if greater else min)(seen))

    sampler = sampler or optuna.samplers.TPESampler(seed=base.seed, n_startup_trials=min(10, max(3, n_trials // 3)))
    log.info("tuning %s on %s with %s: %d trial(s) over %s; objective: validation %s (%s)", method.name,
             resolved.name, dataset.name, n_trials, ", ".join(f"{k} {v.describe()}" for k, v in search.items()),
             metric, direction)
    trial_dir = Path(tempfile.mkdtemp(dir=out, prefix=".trials-"))  # nothing is saved there; removed below
    start = time.perf_counter()
    interrupted, best_run, trainer = False, None, None
    with _quiet(optuna):
        try:
            args = training_arguments(
                base, trial_dir, learning_rate=float(lr0), precision=precision, dev=dev, method=method,
                run_name=base.run_name or out.name, progress=progress,
                save_strategy="no", load_best_model_at_end=False, save_total_limit=None, report_to="none",
                # floats, because Trainer casts each trial's value to the type of the base one
                num_train_epochs=float(base.epochs), warmup_steps=float(base.warmup_ratio),
                weight_decay=float(base.weight_decay))
            trainer_cls, collator = (
                text2text.trainer_parts(tokenizer, dataset.labels, base.pad_to_multiple_of) if base.task == "text2text"
                else (Trainer, DataCollatorWithPadding(tokenizer, pad_to_multiple_of=base.pad_to_multiple_of)))
            trainer = trainer_cls(
                model_init=model_init, args=args, train_dataset=encoded["train"],
                eval_dataset=encoded["validation"].remove_columns(["length"]), data_collator=collator,
                processing_class=tokenizer, compute_metrics=metrics_function(dataset.labels),
                callbacks=_trial_callbacks(metric, greater, base.early_stopping_patience))
            best_run = trainer.hyperparameter_search(
                hp_space=hp_space, compute_objective=objective, n_trials=n_trials, direction=direction,
                backend="optuna", hp_name=lambda t: f"trial {t.number}", timeout=timeout, sampler=sampler,
                pruner=pruner or optuna.pruners.NopPruner(), storage=store, study_name=name, load_if_exists=True)
        except KeyboardInterrupt:  # keep what finished: Optuna marks the running trial failed
            interrupted = True
        finally:
            shutil.rmtree(trial_dir, ignore_errors=True)
    wall = time.perf_counter() - start
    if (trainer is not None and not trainer.is_world_process_zero()) or (best_run is None and not interrupted):
        return None

    study = optuna.load_study(study_name=name, storage=store)
    rows = _rows(study, names)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        if interrupted:
            raise KeyboardInterrupt("search stopped before a trial finished; nothing written")
        raise UserError("no trial finished", where="attnlab tune", fix="see the log above for the trials' errors")
    best = study.best_trial
    values = base.to_dict() | {k: _cast(k, v) for k, v in best.params.items() if k in SEARCHABLE}
    values["output_dir"] = str(out / "best")
    values["run_name"] = None
    best_cfg = TrainConfig(**values)
    best_cfg.validate()
    best_values = best_cfg.to_dict()
    best_yaml = out / "best.yaml"
    write_text_atomic(best_yaml, (
        f"# attnlab tune: the best of {len(complete)} finished trial(s) (trial {best.number}, validation {metric} "
        f"{best.value:.4f})\n# train it: attnlab train --config {best_yaml} -o runs/best\n")
        + yaml.safe_dump(best_values, sort_keys=False))

    result: dict[str, Any] = {
        "study_name": name, "storage": _hide_password(storage), "direction": "maximize" if greater else "minimize",
        "metric": metric, "objective": f"best validation {metric} of each trial",
        "data": dataset.name, "model": resolved.name, "method": method.name,
        "n_trials_requested": n_trials, "timeout_seconds": timeout, "interrupted": interrupted,
        "search_seconds": wall,
        "space": {k: {"kind": type(v).__name__.lower(), "describe": v.describe(),
                      **({"low": v.low, "high": v.high, "log": v.log} if isinstance(v, Range)
                         else {"values": list(v.values)})} for k, v in search.items()},
        "fixed": {k: lr0 if k == "learning_rate" else getattr(base, k) for k in SEARCHABLE
                  if k not in search and (method.is_adapter or k not in ADAPTER_ONLY)},
        "budget": {"max_steps": base.max_steps, "max_train_samples": base.max_train_samples,
                   "max_eval_samples": base.max_eval_samples, "train_rows": len(dataset.splits["train"]),
                   "validation_rows": len(dataset.splits["validation"]), "seed": base.seed},
        "best": {"trial": best.number, "objective": best.value, "params": best.params},
        "best_config": best_values,
        "trials": rows,
        "versions": library_versions() | {"optuna": optuna.__version__},
        "hardware": hardware(),
    }
    table = markdown_table(rows, names, metric, best.number)
    hw = result["hardware"]
    write_text_atomic(out / "trials.md", (
        f"# Hyperparameter search: {method.name} on {resolved.name}, {dataset.name}\n\n{table}\n\n"
        f"Objective: the best validation {metric} of each trial ({result['direction']}), on "
        f"{result['budget']['validation_rows']} validation rows; {result['budget']['train_rows']} training rows, "
        f"seed {base.seed}. Search space: " + "; ".join(f"{k} {v.describe()}" for k, v in search.items())
        + f". Sampler: {type(sampler).__name__}. {len(rows)} trial(s) in {wall:.0f} s on {hw['cpu']} "
        f"({hw['cpu_cores']} cores){', GPU ' + hw['gpu'] if hw.get('gpu') else ''}.\n\n"
        f"Best: trial {best.number}, {_fmt_params(best.params)}. Train it: "
        f"`attnlab train --config {best_yaml} -o runs/best`\n\n![trials](trials.png)\n"))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["trial", *names, "objective", "seconds", "state"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "trials.csv", buf.getvalue())
    write_json_atomic(out / "trials.json", result)
    _plot(rows, metric, greater, best.number, out / "trials.png")
    log.info("best: trial %d, validation %s %.4f, %s; recipe: %s", best.number, metric, best.value,
             _fmt_params(best.params), best_yaml)
    if interrupted:
        raise KeyboardInterrupt(f"search stopped after {len(complete)} finished trial(s); results so far in {out}")
    return result | {"table": table, "best_yaml": str(best_yaml)}
