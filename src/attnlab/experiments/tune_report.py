"""What ``attnlab tune`` writes once its trials are done: ``best.yaml`` (a recipe), the trials table
(``trials.md``, ``.csv``, ``.json``) and ``trials.png``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from attnlab.errors import UserError
from attnlab.evaluation import tables
from attnlab.evaluation.plots import plt, save_figure
from attnlab.experiments.tune_space import ADAPTER_ONLY, SEARCHABLE, Range, cast, fmt_value
from attnlab.io import write_json_atomic, write_text_atomic
from attnlab.rundir import hardware, library_versions
from attnlab.training.config import TrainConfig

if TYPE_CHECKING:
    from attnlab.experiments.tune import Search


def trial_rows(study: Any, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else None
        rows.append({"trial": t.number, **{n: t.params.get(n) for n in names}, "objective": t.value,
                     "seconds": seconds, "state": t.state.name.lower()})
    return rows


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items())


def markdown_table(rows: list[dict[str, Any]], names: list[str], metric: str, best: int | None) -> str:
    head = ["trial", *names, f"val {metric}", "seconds", "state"]
    lines = []
    for r in rows:
        cells = [f"**{r['trial']}** (best)" if r["trial"] == best else str(r["trial"])]
        cells += ["-" if r[n] is None else fmt_value(r[n]) for n in names]
        cells.append("-" if r["objective"] is None else f"{r['objective']:.4f}")
        cells.append("-" if r["seconds"] is None else f"{r['seconds']:.1f}")
        cells.append(r["state"])
        lines.append(cells)
    return tables.markdown_table(head, lines).rstrip("\n")


def plot_trials(rows: list[dict[str, Any]], metric: str, greater: bool, best: int | None, path: Path) -> None:
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


def write_results(search: Search, study: Any, *, sampler: Any, wall: float, interrupted: bool) -> dict[str, Any]:
    """Write best.yaml, trials.{md,csv,json,png} for the ``study`` and return the trials.json content
    plus ``table`` and ``best_yaml``. No finished trial: nothing is written."""
    import optuna

    names = list(search.space)
    rows = trial_rows(study, names)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        if interrupted:
            raise KeyboardInterrupt("search stopped before a trial finished; nothing written")
        raise UserError("no trial finished", where="attnlab tune", fix="see the log above for the trials' errors")
    best = study.best_trial
    best_values = _write_best_yaml(search, best, len(complete))
    result = _result(search, best, best_values, rows, wall=wall, interrupted=interrupted)
    result["versions"] |= {"optuna": optuna.__version__}
    table = markdown_table(rows, names, search.metric, best.number)
    write_text_atomic(search.out / "trials.md", _trials_page(search, result, table, best, sampler))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["trial", *names, "objective", "seconds", "state"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(search.out / "trials.csv", buf.getvalue())
    write_json_atomic(search.out / "trials.json", result)
    plot_trials(rows, search.metric, search.greater, best.number, search.out / "trials.png")
    return result | {"table": table, "best_yaml": str(search.best_yaml)}


def _write_best_yaml(search: Search, best: Any, finished: int) -> dict[str, Any]:
    """The base settings with the best trial's merged in, as a recipe; returns those settings."""
    values = search.base.to_dict() | {k: cast(k, v) for k, v in best.params.items() if k in SEARCHABLE}
    values["output_dir"] = str(search.out / "best")
    values["run_name"] = None
    best_cfg = TrainConfig(**values)
    best_cfg.validate()
    best_values = best_cfg.to_dict()
    write_text_atomic(search.best_yaml, (
        f"# attnlab tune: the best of {finished} finished trial(s) (trial {best.number}, validation "
        f"{search.metric} {best.value:.4f})\n# train it: attnlab train --config {search.best_yaml} -o runs/best\n")
        + yaml.safe_dump(best_values, sort_keys=False))
    return best_values


def _result(search: Search, best: Any, best_values: dict[str, Any], rows: list[dict[str, Any]], *, wall: float,
            interrupted: bool) -> dict[str, Any]:
    """trials.json: the study, what was searched and fixed, the budget, the best trial and every trial."""
    base, setup, splits = search.base, search.setup, search.setup.data.splits
    return {
        "study_name": search.study_name, "storage": search.storage_shown, "direction": search.direction,
        "metric": search.metric, "objective": f"best validation {search.metric} of each trial",
        "data": setup.data.name, "model": setup.resolved.name, "method": setup.method.name,
        "n_trials_requested": search.n_trials, "timeout_seconds": search.timeout, "interrupted": interrupted,
        "search_seconds": wall,
        "space": {k: {"kind": type(v).__name__.lower(), "describe": v.describe(),
                      **({"low": v.low, "high": v.high, "log": v.log} if isinstance(v, Range)
                         else {"values": list(v.values)})} for k, v in search.space.items()},
        "fixed": {k: search.learning_rate if k == "learning_rate" else getattr(base, k) for k in SEARCHABLE
                  if k not in search.space and (setup.method.lora_settings or k not in ADAPTER_ONLY)},
        "budget": {"max_steps": base.max_steps, "max_train_samples": base.max_train_samples,
                   "max_eval_samples": base.max_eval_samples, "train_rows": len(splits["train"]),
                   "validation_rows": len(splits["validation"]), "seed": base.seed},
        "best": {"trial": best.number, "objective": best.value, "params": best.params},
        "best_config": best_values,
        "trials": rows,
        "versions": library_versions(),
        "hardware": hardware(),
    }


def _trials_page(search: Search, result: dict[str, Any], table: str, best: Any, sampler: Any) -> str:
    setup, hw, budget = search.setup, result["hardware"], result["budget"]
    return (
        f"# Hyperparameter search: {setup.method.name} on {setup.resolved.name}, {setup.data.name}\n\n{table}\n\n"
        f"Objective: the best validation {search.metric} of each trial ({search.direction}), on "
        f"{budget['validation_rows']} validation rows; {budget['train_rows']} training rows, "
        f"seed {search.base.seed}. Search space: " + "; ".join(f"{k} {v.describe()}" for k, v in search.space.items())
        + f". Sampler: {type(sampler).__name__}. {len(result['trials'])} trial(s) in {result['search_seconds']:.0f} s "
        f"on {hw['cpu']} ({hw['cpu_cores']} cores){', GPU ' + hw['gpu'] if hw.get('gpu') else ''}.\n\n"
        f"Best: trial {best.number}, {fmt_params(best.params)}. Train it: "
        f"`attnlab train --config {search.best_yaml} -o runs/best`\n\n![trials](trials.png)\n")


__all__ = ["fmt_params", "markdown_table", "plot_trials", "trial_rows", "write_results"]
