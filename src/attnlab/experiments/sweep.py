"""``sweep``: a parameter-efficiency study. LoRA at several ranks on several sets of target layers,
plus cheap baselines (head only, BitFit), all with the same data, seed and budget.

Target sets (resolved to the model's own layer names, see :func:`target_modules`):

* ``attention``     -- the four attention projections (BERT: query, key, value, attention.output.dense)
* ``attention+mlp`` -- those and the feed-forward layers (BERT: intermediate.dense, output.dense)
* ``all-linear``    -- PEFT's "all-linear": every linear layer except the classifier (adds BERT's pooler)

Writes ``sweep.{json,csv,md}``, ``accuracy_vs_params.png`` (test accuracy against trainable
parameters, log scale) and ``epoch_time_vs_params.png`` (seconds per training epoch against the
same). A finished run whose settings match is reused, so an interrupted sweep continues where it
stopped.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from attnlab.errors import UserError
from attnlab.evaluation.plots import plt, save_figure
from attnlab.experiments.report import (
    Column,
    budget,
    markdown_table,
    parse_list,
    run_row,
    train_or_reuse,
    write_tables,
)
from attnlab.models import load_pretrained, resolve_model
from attnlab.rundir import hardware
from attnlab.training.build import load_config_data
from attnlab.training.config import TrainConfig
from attnlab.training.methods import get_method, lora_methods
from attnlab.training.tasks import require_classes

log = logging.getLogger(__name__)

TARGET_SETS = ("attention", "attention+mlp", "all-linear")
# (attention layers, feed-forward layers) per architecture family, as PEFT suffixes
FAMILIES: dict[str, tuple[list[str], list[str]]] = {
    "bert": (["query", "key", "value", "attention.output.dense"], ["intermediate.dense", "output.dense"]),
    "mpnet": (["attn.q", "attn.k", "attn.v", "attn.o"], ["intermediate.dense", "output.dense"]),
    "distilbert": (["q_lin", "k_lin", "v_lin", "out_lin"], ["ffn.lin1", "ffn.lin2"]),
    "llama": (["q_proj", "k_proj", "v_proj", "o_proj"], ["gate_proj", "up_proj", "down_proj"]),
    "attnlab-scratch": (["q_proj", "k_proj", "v_proj", "o_proj"], ["ffn.fc1", "ffn.fc2"]),
}
COLUMNS: list[Column] = [
    ("name", "run", ""), ("method", "method", ""), ("targets", "targets", ""), ("rank", "r", ""),
    ("adapted_modules", "adapted layers", ""), ("trainable_params", "trainable params", ","),
    ("trainable_percent", "trainable %", ".3f"), ("test_accuracy", "test acc", "%"),
    ("validation_accuracy", "val acc", "%"), ("epoch_seconds", "s / epoch", ""),
    ("checkpoint_mib", "checkpoint MiB", ""),
]
SKIPPED = ("peak_rss_mib", "tokens_per_second", "precision", "device")


def linear_layer_names(model_ref: str) -> list[str]:
    """Names of every ``nn.Linear`` in the model's sequence classifier, built on the meta device
    (no weights loaded, no memory used)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = load_pretrained(AutoConfig.from_pretrained, resolve_model(model_ref))
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def _matches(name: str, suffixes: list[str]) -> bool:  # PEFT's rule for a list of target names
    return any(name == s or name.endswith(f".{s}") for s in suffixes)


def target_modules(linear_names: list[str], target_set: str) -> list[str] | str:
    """The ``lora_targets`` for a target set, for a model with these linear layer names."""
    if target_set == "all-linear":
        return "all-linear"
    if target_set not in TARGET_SETS:
        raise UserError(f"unknown target set '{target_set}'", where="--targets",
                        fix=f"pick from {', '.join(TARGET_SETS)}")
    for attention, mlp in FAMILIES.values():
        if all(any(_matches(n, [s]) for n in linear_names) for s in attention + mlp):
            return attention if target_set == "attention" else attention + mlp
    raise UserError("the attention and MLP layers of this model are not known to attnlab", where="--model",
                    fix="use --targets all-linear, or train with --lora-targets naming its layers")


def adapted_count(linear_names: list[str], targets: list[str] | str) -> int:
    """How many linear layers get an adapter (PEFT's all-linear skips the classifier head)."""
    if targets == "all-linear":
        from attnlab.models.heads import is_head_param

        return sum(not is_head_param(n + ".weight") for n in linear_names)
    return sum(_matches(n, list(targets)) for n in linear_names)


def _row(run, name: str, targets: str | None, rank: int | None, adapted: int | None) -> dict[str, Any]:
    # no peak RSS (one process trains every row, so it only grows), nor compare's speed and device columns
    common = {k: v for k, v in run_row(run).items() if k not in SKIPPED}
    return {"name": name, "targets": targets, "rank": rank, "adapted_modules": adapted, **common}


def _plot(rows: list[dict[str, Any]], y: str, ylabel: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for target in dict.fromkeys(r["targets"] for r in rows if r["targets"]):
        pts = sorted((r["trainable_params"], r[y], r["rank"]) for r in rows if r["targets"] == target
                     and r[y] is not None)
        if pts:
            method = next(r["method"] for r in rows if r["targets"] == target)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{method}: {target}")
            for x, v, r in pts:
                ax.annotate(f"r={r}", (x, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
    baselines = [r for r in rows if r["targets"] is None and r[y] is not None]
    for r, color in zip(baselines, ("black", "tab:gray", "tab:brown", "tab:olive"), strict=False):
        ax.scatter(r["trainable_params"], r[y], marker="s", s=45, color=color, label=r["method"])
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _check_request(ranks: list[int], targets: list[str], baselines: list[str], adapter: str) -> None:
    if any(r <= 0 for r in ranks):
        raise UserError("ranks must be positive", where="--ranks", fix="pass e.g. 1,4,16,64")
    if adapter not in lora_methods():
        raise UserError(f"'{adapter}' is not an adapter method", where="--adapter",
                        fix=f"pick {' or '.join(lora_methods())}")
    for t in targets:
        if t not in TARGET_SETS:
            raise UserError(f"unknown target set '{t}'", where="--targets", fix=f"pick from {', '.join(TARGET_SETS)}")
    for b in baselines:
        if get_method(b).is_adapter:
            raise UserError(f"'{b}' is an adapter method, not a baseline", where="--baselines",
                            fix="baselines are non-adapter methods such as head, bitfit or full")
    if not (ranks and targets) and not baselines:
        raise UserError("nothing to train", where="attnlab sweep",
                        fix="pass --ranks and --targets (and/or --baselines)")
    if bool(ranks) != bool(targets):
        raise UserError("--ranks and --targets go together", where="attnlab sweep", fix="pass both, or neither")


def _plan(base: TrainConfig, out: Path, ranks: list[int], targets: list[str], baselines: list[str],
          adapter: str) -> list[tuple[str, TrainConfig, str | None, int | None, int | None]]:
    """(row name, settings, target set, rank, adapted layers) per row: adapters first, then baselines."""
    linear = linear_layer_names(base.model) if targets else []
    plan: list[tuple[str, TrainConfig, str | None, int | None, int | None]] = []
    for t in targets:
        mods = target_modules(linear, t)
        for r in ranks:
            name = f"{adapter}-{t.replace('+', '-')}-r{r}"
            cfg = replace(base, method=adapter, lora_r=r, lora_targets=mods, output_dir=str(out / name))
            plan.append((name, cfg, t, r, adapted_count(linear, mods)))
    for b in baselines:
        plan.append((b, replace(base, method=b, learning_rate=None, output_dir=str(out / b)), None, None, None))
    return plan


def sweep(base: TrainConfig, ranks: str | list[int], targets: str | list[str], output_dir: str | Path, *,
          baselines: str | list[str] | None = ("head", "bitfit"), adapter: str = "lora", overwrite: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train ``adapter`` at every (target set, rank) and each baseline method with ``base``'s model,
    data, seed and budget; write the table and plots to ``output_dir``.

    ``base.learning_rate`` (when set) applies to the adapter runs; baselines use their method's
    default. A finished run with the same settings is reused unless ``overwrite``.
    """
    require_classes(base, "attnlab sweep")
    ranks = parse_list(ranks, "ranks", int)
    targets = parse_list(targets, "targets")
    baselines = parse_list(baselines, "baselines")
    _check_request(ranks, targets, baselines, adapter)
    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    data = load_config_data(base)  # every row trains on the same split
    plan = _plan(base, out, ranks, targets, baselines, adapter)
    rows = []
    for i, (name, cfg, t, r, adapted) in enumerate(plan, 1):
        cfg.validate()
        run = train_or_reuse(cfg, data, step=f"sweep {i}/{len(plan)}", what=name, overwrite=overwrite,
                             progress=progress, log=log)
        rows.append(_row(run, name, t, r, adapted))

    result: dict[str, Any] = {
        "data": data.name, "model": base.model, "adapter": adapter, "seed": base.seed, "budget": budget(base, data),
        "ranks": ranks, "targets": targets, "baselines": baselines, "rows": rows, "hardware": hardware(),
    }
    table = markdown_table(rows, COLUMNS, missing="-")
    hw = result["hardware"]
    write_tables(out, "sweep", f"# Parameter-efficiency sweep: {base.model} on {data.name}\n\n{table}\n\n"
                 f"Same data split ({result['budget']['train_rows']} training rows), seed {base.seed} and budget "
                 f"({base.epochs:g} epochs, batch {base.batch_size}) for every row; LoRA alpha = "
                 f"{'2 r' if base.lora_alpha is None else base.lora_alpha}. Hardware: {hw['cpu']} "
                 f"({hw['cpu_cores']} cores){', GPU ' + hw['gpu'] if hw.get('gpu') else ''}.\n\n"
                 "![accuracy vs trainable parameters](accuracy_vs_params.png)\n"
                 "![time per epoch vs trainable parameters](epoch_time_vs_params.png)\n", result)
    _plot(rows, "test_accuracy", "test accuracy", "accuracy vs trainable parameters", out / "accuracy_vs_params.png")
    _plot(rows, "epoch_seconds", "seconds per training epoch", "training time vs trainable parameters",
          out / "epoch_time_vs_params.png")
    result["table"] = table
    return result
