"""Training settings: one dataclass, filled from defaults, a recipe YAML and CLI flags (in that
order), validated once, and saved as ``config.yaml`` in the run directory.

Each field carries its type, default, help and CLI group in its ``metadata``
(:mod:`attnlab.training.settings` says which facts it may hold); the flags of every training command,
the recipe checks and the generated reference are derived from these fields, and ``config.yaml``
holds them in field order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from attnlab.errors import UserError
from attnlab.models.pooling import POOLINGS
from attnlab.training.settings import UNSET, Switch, check_fields, invalid, meta

# upper bounds for settings whose type allows absurd values that fail late and loudly: 100,000 threads
# exhausted memory starting them, a rank of 1e11 tried to allocate terabytes, 1e300 epochs never end
MAX_THREADS, MAX_LORA_R, MAX_EPOCHS = 1024, 4096, 10_000

TASKS = ("classification", "text2text", "regression", "multi-label")
PRECISIONS = ("auto", "bf16", "fp32")
BEST_MODEL_METRICS = ("accuracy", "macro_f1", "loss", "mse", "mae", "pearson", "spearman", "micro_f1",
                      "subset_accuracy")  # each task accepts its own (attnlab.training.tasks.check_best_metric)


def rate_text(x: float) -> str:
    """5e-05 -> "5e-5"."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def method_help() -> str:
    """The ``method`` help, from the method registry (imported only when the text is shown)."""
    from attnlab.training.methods import METHODS

    return "fine-tuning method: " + " | ".join(METHODS)


def learning_rate_defaults() -> str:
    """Each method's default learning rate, with the model registry's per-model exceptions:
    "per method: full 5e-5 (5e-4 for scratch-encoder), lora/qlora 5e-4, ..."."""
    from attnlab.models.registry import MODELS
    from attnlab.training.methods import METHODS

    groups: dict[tuple[float, tuple[str, ...]], list[str]] = {}
    for m in METHODS.values():
        exceptions = tuple(f"{rate_text(src.learning_rates[m.name])} for {src.name}" for src in MODELS.values()
                           if m.name in src.learning_rates)
        groups.setdefault((m.learning_rate, exceptions), []).append(m.name)
    return "per method: " + ", ".join(f"{'/'.join(names)} {rate_text(lr)}" + (f" ({', '.join(exc)})" if exc else "")
                                      for (lr, exc), names in groups.items())


# the argument groups of `attnlab train --help`; a setting without one is recipe-only
DATA, MODEL, TRAINING, LORA, DISTILL, BOOKKEEPING = (
    "data", "model and method", "training", "LoRA", "distillation", "bookkeeping")


@dataclass
class TrainConfig:
    """Everything needed to reproduce a run. ``None`` is a value: "the method's default", "all rows",
    "disabled" (``early_stopping_patience``), as each field's help says."""

    # the fields in config.yaml order; each one's argument group (`group=`) is its place in --help
    # what
    data: str = field(default="movie-snippets", metadata=meta(
        "named data set (movie-snippets, sst2), a CSV/TSV/JSON/JSONL/Parquet file, or a folder of "
        "train/validation/test files", group=DATA))
    model: str = field(default="minilm-l6", metadata=meta(
        "registered name (see `attnlab models`), local HF folder or hub id", group=MODEL))
    method: str = field(default="lora", metadata=meta(method_help, group=MODEL))
    task: str = field(default="classification", metadata=meta(
        "classification: a classifier head on the model; text2text: a seq2seq model (T5) writes the label word, "
        "scored per label; regression: one output trained with MSE on a numeric label column; multi-label: one "
        "sigmoid per label, labels as lists or 'a|b' strings, thresholds tuned on validation (docs/howto/tasks.md)",
        group=MODEL, choices=TASKS))
    pooling: str = field(default="auto", metadata=meta(
        "classification: how token vectors become the sentence vector the classifier reads: mean, cls, max, "
        "pooler (the architecture's own head, e.g. BERT's tanh layer on [CLS]), or auto: for head (a frozen "
        "encoder) what the checkpoint was trained with (mean for the packaged sentence-transformers models), "
        "for the other methods pooler",
        group=MODEL, choices=POOLINGS))
    output_dir: str = field(default="runs/run", metadata=meta("the run directory to write"))  # flag: per command
    # data
    data_dir: str | None = field(default=None, metadata=meta(
        "folder for named data sets that need one, e.g. a GLUE-style SST-2 folder (or set ATTNLAB_SST2_DIR)",
        group=DATA))
    text_column: str | None = field(default=None, metadata=meta(
        "text column", group=DATA, default_text="detected from common names"))
    label_column: str | None = field(default=None, metadata=meta(
        "label column", group=DATA, default_text="detected from common names"))
    max_train_samples: int | None = field(default=None, metadata=meta(
        "use a stratified subset of the training split", group=TRAINING, default_text="all rows"))
    max_eval_samples: int | None = field(default=None, metadata=meta(
        "use stratified subsets of validation and test", group=TRAINING, default_text="all rows"))
    val_fraction: float = field(default=0.1, metadata=meta(
        "validation share when it is carved from train", group=TRAINING))
    test_fraction: float = field(default=0.1, metadata=meta("test share when it is carved from train", group=TRAINING))
    max_length: int = field(default=128, metadata=meta(
        "truncate texts to this many tokens", group=TRAINING, positive=True))
    text_prefix: str | None = field(default=None, metadata=meta(
        "text2text: put before every input, e.g. 'sst2 sentence: '", group=MODEL))
    # optimisation
    epochs: float = field(default=3.0, metadata=meta("training epochs", group=TRAINING))
    max_steps: int = field(default=-1, metadata=meta(
        "stop after this many optimiser steps; > 0 overrides --epochs", group=TRAINING))
    learning_rate: float | None = field(default=None, metadata=meta(
        "peak learning rate", group=TRAINING, flags=("--learning-rate", "--lr"), default_text=learning_rate_defaults))
    batch_size: int = field(default=32, metadata=meta("training batch size", group=TRAINING, positive=True))
    eval_batch_size: int = field(default=128, metadata=meta("evaluation batch size", group=TRAINING, positive=True))
    gradient_accumulation_steps: int = field(default=1, metadata=meta(
        "batches whose gradients add up to one optimiser step", group=TRAINING, positive=True))
    dropout: float | None = field(default=None, metadata=meta(
        "dropout probability of every dropout layer of the model (hidden, attention, head)", group=TRAINING,
        default_text="the checkpoint's own (0.1 for BERT-style models)"))
    weight_decay: float = field(default=0.01, metadata=meta("AdamW weight decay", group=TRAINING))
    warmup_ratio: float = field(default=0.06, metadata=meta("share of steps spent warming up", group=TRAINING))
    lr_scheduler: str = field(default="linear", metadata=meta(
        "transformers scheduler name, e.g. linear, cosine, constant", group=TRAINING))
    seed: int = field(default=42, metadata=meta(
        "random seed: splits, subsets, initialisation, batch order", group=TRAINING))
    precision: str = field(default="auto", metadata=meta(
        "auto: bf16 where it is faster than fp32 (AMX CPUs, AMD AVX512-BF16 CPUs, Ampere+ GPUs), else fp32",
        group=TRAINING, choices=PRECISIONS))
    early_stopping_patience: int | None = field(default=2, metadata=meta(
        "evaluations without improvement before stopping; null (--no-early-stopping) turns it off",
        group=TRAINING, positive=True, switches=(Switch("--no-early-stopping", None, "train for the whole budget"),)))
    metric_for_best_model: str | None = field(default=None, metadata=meta(
        "validation metric that picks the best checkpoint", group=TRAINING, choices=BEST_MODEL_METRICS,
        default_text="the task's: accuracy (classification, text2text), mse (regression), micro_f1 (multi-label)"))
    eval_every_steps: int | None = field(default=None, metadata=meta(
        "evaluate and checkpoint every N steps", group=TRAINING, positive=True, default_text="every epoch"))
    group_by_length: bool = field(default=True, metadata=meta(
        "batches of similar length: less padding", group=TRAINING,
        switches=(Switch("--no-group-by-length", False, "random batches instead of length-grouped ones"),)))
    # method settings
    lora_r: int = field(default=16, metadata=meta("adapter rank", group=LORA, positive=True))
    lora_alpha: int | None = field(default=None, metadata=meta(
        "scaling numerator", group=LORA, positive=True, default_text="2 × lora_r"))
    lora_dropout: float = field(default=0.0, metadata=meta("dropout on the adapters' input", group=LORA))
    lora_targets: list[str] | str | None = field(default=None, metadata=meta(
        "comma-separated module names, or all-linear", group=LORA,
        default_text="every attention and MLP linear layer"))
    lora_top_layers: int | None = field(default=None, metadata=meta(
        "adapters only in the top N encoder layers: the layers below train nothing, so the backward pass stops "
        "at the lowest adapted layer (a shorter step; classifiers only; modules outside the numbered layers, "
        "such as BERT's pooler, get none)", group=LORA, positive=True,
        default_text="every layer"))
    # distillation (docs/howto/distill.md); the loss: alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * CE
    teacher: str | None = field(default=None, metadata=meta(
        "a finished classification run (its --output-dir) whose soft labels the student learns from as well as "
        "the true labels (knowledge distillation); its logits on the training texts are computed once and cached "
        "in the teacher's run directory", group=DISTILL, default_text="none: plain training"))
    distill_temperature: float = field(default=2.0, metadata=meta(
        "softmax temperature T of teacher and student in the distillation term (> 0; higher: softer targets)",
        group=DISTILL))
    distill_alpha: float = field(default=0.5, metadata=meta(
        "weight of the distillation term against cross-entropy on the true labels, in [0, 1] (0: labels only)",
        group=DISTILL))
    # logging and bookkeeping
    logging_steps: int = field(default=50, metadata=meta(
        "log loss and learning rate every N steps", group=BOOKKEEPING, positive=True))
    report_to: list[str] = field(default_factory=list, metadata=meta(
        "comma-separated Trainer integrations, e.g. tensorboard,mlflow", group=BOOKKEEPING))
    num_threads: int | None = field(default=None, metadata=meta(
        "torch CPU threads", group=BOOKKEEPING, positive=True,
        default_text="all physical cores, shared under torchrun"))
    # speed (docs/speed.md: what each does and what it measured)
    torch_compile: bool = field(default=False, metadata=meta(
        "torch.compile the model (CPU needs a C++ compiler; pays off only on long runs: docs/speed.md)",
        group=BOOKKEEPING, switches=(Switch("--torch-compile", True),)))
    optim: str | None = field(default=None, metadata=meta(
        "Trainer optimizer name, e.g. adamw_torch", group=BOOKKEEPING,
        default_text="Trainer's, fused AdamW on torch >= 2.8"))
    pad_to_multiple_of: int | None = field(default=None, metadata=meta(
        "pad each batch to a multiple of N tokens", group=BOOKKEEPING, positive=True))
    fast_dropout: bool = field(default=True, metadata=meta(
        "on a CPU, the model's dropout draws its mask from 16-bit random words: the same dropout from a quarter "
        "of torch's random draws (docs/speed.md)", group=BOOKKEEPING,
        switches=(Switch("--torch-dropout", False, "torch's own dropout on a CPU (one random draw per element)"),)))
    keep_checkpoints: bool = field(default=False, metadata=meta(
        "keep Trainer checkpoints after the run", group=BOOKKEEPING, switches=(Switch("--keep-checkpoints", True),)))
    run_name: str | None = field(default=None, metadata=meta(  # recipe only: no group, no flag
        "the run's name in Trainer integrations (--report-to)", default_text="the output folder's name"))

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_sources(cls, recipe: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the recipe YAML, then the overrides (CLI flags). An override is a value,
        ``None`` included (``early_stopping_patience=None`` disables early stopping); leave a setting
        out, or pass :data:`~attnlab.training.settings.UNSET`, to keep the recipe's value."""
        values: dict[str, Any] = {}
        if recipe is not None:
            values.update(load_recipe(recipe))
        values.update({k: v for k, v in overrides.items() if v is not UNSET})
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise UserError(f"unknown setting(s): {', '.join(unknown)}", where=str(recipe or "config"),
                            fix="see `attnlab train --help` for the valid names")
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Types, choices and positivity from the field declarations, then the ranges no type says."""
        if isinstance(self.report_to, str):  # a comma-separated string, as the flag and recipes give it
            self.report_to = [s for s in self.report_to.split(",") if s and s != "none"]
        if isinstance(self.lora_targets, str) and self.lora_targets not in ("all-linear",):
            self.lora_targets = [t.strip() for t in self.lora_targets.split(",") if t.strip()]
        check_fields(self)
        self._check_ranges()

    def _check_ranges(self) -> None:
        fields = {f.name: f for f in dataclasses.fields(self)}

        def bad(name: str, why: str, fix: str) -> UserError:
            return invalid(fields[name], why, fix)

        if self.epochs <= 0 and self.max_steps <= 0:
            raise bad("epochs", f"{self.epochs} is not positive", "pass e.g. --epochs 3")
        if not self.epochs <= MAX_EPOCHS:  # also nan
            raise bad("epochs", f"{self.epochs} is too large", f"pass at most {MAX_EPOCHS:,} (or bound --max-steps)")
        if self.lora_r > MAX_LORA_R:
            raise bad("lora_r", f"{self.lora_r} is too large", f"pass at most {MAX_LORA_R} (usual ranks: 4 to 64)")
        if self.num_threads is not None and self.num_threads > MAX_THREADS:
            raise bad("num_threads", f"{self.num_threads} is too many", f"pass at most {MAX_THREADS} (one per core)")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise bad("learning_rate", f"{self.learning_rate} is outside (0, 1)", "pass e.g. 5e-5 or 5e-4")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise bad("dropout", f"{self.dropout} is outside [0, 1)", "pass e.g. 0.0 or 0.1, or leave it out")
        if not 0 <= self.lora_dropout < 1:
            raise bad("lora_dropout", f"{self.lora_dropout} is outside [0, 1)", "pass e.g. 0.0 or 0.1")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", f"{self.warmup_ratio} is outside [0, 1)", "pass e.g. 0.06")
        if self.weight_decay < 0:
            raise bad("weight_decay", f"{self.weight_decay} is negative", "pass e.g. 0.01")
        if self.max_length > 8192:
            raise bad("max_length", f"{self.max_length} is too large", "pass at most 8192 (512 for BERT)")
        if not 0 <= self.seed < 2**32:
            raise bad("seed", f"{self.seed} is outside [0, 2**32)", "pass e.g. 42")
        if not self.distill_temperature > 0:  # also nan
            raise bad("distill_temperature", f"{self.distill_temperature} is not positive", "pass e.g. 2.0")
        if not 0 <= self.distill_alpha <= 1:
            raise bad("distill_alpha", f"{self.distill_alpha} is outside [0, 1]", "pass e.g. 0.5")
        if self.optim is not None:
            from transformers.training_args import OptimizerNames

            if self.optim not in {o.value for o in OptimizerNames}:
                raise bad("optim", f"'{self.optim}' is not a Trainer optimizer",
                          "pass e.g. adamw_torch_fused or adamw_torch (see transformers' OptimizerNames)")
        from transformers.trainer_utils import SchedulerType

        if self.lr_scheduler not in {s.value for s in SchedulerType}:
            raise bad("lr_scheduler", f"'{self.lr_scheduler}' is not a transformers scheduler",
                      "pass e.g. linear, cosine or constant")

    @property
    def resolved_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r


def recorded_not_settings() -> set[str]:
    """config.yaml keys that record facts, not settings: the run's own (``attnlab.rundir.RECORDED``:
    the model's path, adapter or whole model), and what methods record."""
    from attnlab.rundir import RECORDED
    from attnlab.training.methods import recorded_keys

    return set(RECORDED) | recorded_keys()


def recipe_names() -> list[str]:
    """The recipes packaged with attnlab (``attnlab/recipes/*.yaml``), by name: ``lora-minilm``, ..."""
    folder = resources.files("attnlab") / "recipes"
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir() if f.name.endswith(".yaml"))


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe YAML: a flat mapping of TrainConfig fields. ``path`` is a file, or, when no such
    file exists, the name of a packaged recipe (``lora-minilm`` or ``lora-minilm.yaml``)."""
    p = Path(path)
    if p.is_file():
        where, read = str(p), p.read_text
    else:
        name = str(path).removesuffix(".yaml")
        packaged = resources.files("attnlab") / "recipes" / f"{name}.yaml"
        if p.name != str(path) or not packaged.is_file():  # a path with folders is never a name
            raise UserError("recipe file not found", where=str(path),
                            fix=f"pass a YAML file or a packaged recipe name: {', '.join(recipe_names())}")
        where, read = f"recipe {name}", packaged.read_text
    try:
        data = yaml.safe_load(read(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"recipe is not valid YAML: {detail}" + (f" at line {mark.line + 1}" if mark else ""),
                        where=where, fix="fix the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError("recipe must be a mapping of setting: value", where=where,
                        fix=f"see the packaged recipes ({', '.join(recipe_names())}) in attnlab/recipes/")
    # a run's config.yaml records facts next to its settings; they are not settings to re-apply
    recorded = recorded_not_settings()
    return {str(k).replace("-", "_"): v for k, v in data.items() if str(k) not in recorded}
