"""Training settings: one dataclass, filled from defaults, a recipe YAML and CLI flags (in that
order), validated once, and saved as ``config.yaml`` in the run directory."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from attnlab.errors import UserError

TASKS = ("classification", "text2text")


@dataclass
class TrainConfig:
    """Everything needed to reproduce a run. ``None`` means "the method's default"."""

    # what
    data: str = "movie-snippets"  # a named data set, a file, or a folder of split files
    model: str = "minilm-l6"  # a registered name, a local HF folder, or a hub id
    method: str = "lora"  # full | lora | head (and any registered method)
    task: str = "classification"  # classification (a head on the model) | text2text (a seq2seq model writes the label)
    output_dir: str = "runs/run"
    # data
    data_dir: str | None = None  # folder for named data sets that need one (sst2)
    text_column: str | None = None
    label_column: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_length: int = 128  # tokens; longer texts are truncated
    text_prefix: str | None = None  # text2text only: put before every input, e.g. "sst2 sentence: "
    # optimisation
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float | None = None  # method default when None
    batch_size: int = 32
    eval_batch_size: int = 128
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lr_scheduler: str = "linear"
    seed: int = 42
    precision: str = "auto"  # auto | bf16 | fp32
    early_stopping_patience: int | None = 2  # evaluations without improvement; None disables
    metric_for_best_model: str = "accuracy"
    eval_every_steps: int | None = None  # evaluate every N steps instead of every epoch
    group_by_length: bool = True  # batches of similar length: less padding
    # method settings
    lora_r: int = 16
    lora_alpha: int | None = None  # 2 * r when None
    lora_dropout: float = 0.0
    lora_targets: list[str] | str | None = None  # None: all attention + MLP linears
    # logging and bookkeeping
    logging_steps: int = 50
    report_to: list[str] = field(default_factory=list)  # e.g. ["tensorboard"], ["mlflow"]
    num_threads: int | None = None  # torch intra-op threads; None = physical cores (shared under torchrun)
    # speed (docs/speed.md: what each does and what it measured)
    torch_compile: bool = False  # torch.compile the model (CPU needs a C++ compiler); see docs/speed.md
    optim: str | None = None  # Trainer optimizer name; None = Trainer's default (fused AdamW on torch >= 2.8)
    pad_to_multiple_of: int | None = None  # pad each batch to a multiple of this many tokens
    keep_checkpoints: bool = False
    run_name: str | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_sources(cls, recipe: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the recipe YAML, then the non-None overrides (CLI flags)."""
        values: dict[str, Any] = {}
        if recipe is not None:
            values.update(load_recipe(recipe))
        values.update({k: v for k, v in overrides.items() if v is not None})
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
        def bad(name: str, why: str, fix: str) -> UserError:
            return UserError(f"invalid {name}: {why}", where=f"--{name.replace('_', '-')}", fix=fix)

        types = {f.name: f.type for f in dataclasses.fields(self)}
        for name, kind in types.items():  # every field against its annotation: recipes can hold anything
            want = _type_error(getattr(self, name), str(kind))
            if want:
                raise bad(name, f"{getattr(self, name)!r} is not {want}", f"pass {want}")
        for name in ("epochs", "learning_rate", "weight_decay", "warmup_ratio", "lora_dropout",
                     "val_fraction", "test_fraction"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
                raise bad(name, f"{v!r} is not a number", "pass a number")
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "max_length", "lora_r",
                     "seed", "logging_steps", "max_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise bad(name, f"{v!r} is not an integer ({types[name]})", "pass an integer")
        positive = ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "max_length", "lora_r",
                    "logging_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise bad(name, f"{getattr(self, name)} is not positive", "pass a value > 0")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise bad("epochs", f"{self.epochs} is not positive", "pass e.g. --epochs 3")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise bad("learning_rate", f"{self.learning_rate} is outside (0, 1)", "pass e.g. 5e-5 or 5e-4")
        if not 0 <= self.lora_dropout < 1:
            raise bad("lora_dropout", f"{self.lora_dropout} is outside [0, 1)", "pass e.g. 0.0 or 0.1")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", f"{self.warmup_ratio} is outside [0, 1)", "pass e.g. 0.06")
        if self.weight_decay < 0:
            raise bad("weight_decay", "negative", "pass e.g. 0.01")
        if self.max_length > 8192:
            raise bad("max_length", f"{self.max_length} is too large", "pass at most 8192 (512 for BERT)")
        if self.task not in TASKS:
            raise bad("task", f"'{self.task}' is not one of {', '.join(TASKS)}", "pick one of those")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise bad("precision", f"'{self.precision}' is not one of auto, bf16, fp32", "pick one of those")
        if self.lora_alpha is not None and (isinstance(self.lora_alpha, bool) or self.lora_alpha <= 0):
            raise bad("lora_alpha", f"{self.lora_alpha} is not positive", "pass e.g. 2 * r")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise bad("early_stopping_patience", "must be >= 1", "pass e.g. 2, or omit it")
        if self.metric_for_best_model not in ("accuracy", "macro_f1", "loss"):
            raise bad("metric_for_best_model", f"'{self.metric_for_best_model}'", "pick accuracy, macro_f1 or loss")
        if self.eval_every_steps is not None and self.eval_every_steps <= 0:
            raise bad("eval_every_steps", "must be positive", "pass e.g. 200, or omit it")
        if self.pad_to_multiple_of is not None and (isinstance(self.pad_to_multiple_of, bool)
                                                    or not isinstance(self.pad_to_multiple_of, int)
                                                    or self.pad_to_multiple_of <= 0):
            raise bad("pad_to_multiple_of", f"{self.pad_to_multiple_of!r} is not a positive integer", "pass e.g. 8")
        if not isinstance(self.torch_compile, bool):
            raise bad("torch_compile", f"{self.torch_compile!r} is not true/false", "pass true or false")
        if self.optim is not None:
            from transformers.training_args import OptimizerNames

            names = [o.value for o in OptimizerNames]
            if self.optim not in names:
                raise bad("optim", f"'{self.optim}' is not a Trainer optimizer",
                          "pass e.g. adamw_torch_fused or adamw_torch (see transformers' OptimizerNames)")
        if not 0 <= self.seed < 2**32:
            raise bad("seed", f"{self.seed} is outside [0, 2**32)", "pass e.g. 42")
        if self.num_threads is not None and self.num_threads <= 0:
            raise bad("num_threads", f"{self.num_threads} is not positive", "pass e.g. 2, or omit it")
        from transformers.trainer_utils import SchedulerType

        if self.lr_scheduler not in {s.value for s in SchedulerType}:
            raise bad("lr_scheduler", f"'{self.lr_scheduler}' is not a transformers scheduler",
                      "pass e.g. linear, cosine or constant")
        if isinstance(self.report_to, str):
            self.report_to = [s for s in self.report_to.split(",") if s and s != "none"]
        if isinstance(self.lora_targets, str) and self.lora_targets not in ("all-linear",):
            self.lora_targets = [t.strip() for t in self.lora_targets.split(",") if t.strip()]

    @property
    def resolved_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r


_KINDS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _type_error(value: Any, annotation: str) -> str | None:
    """None if ``value`` fits a simple annotation like ``int | None`` or ``list[str] | str``, else what
    would fit, in words."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    for k in kinds:
        if k in _KINDS and isinstance(value, _KINDS[k]) and (k == "bool" or not isinstance(value, bool)):
            return None
        if k.startswith("list[") and (isinstance(value, str) or (  # a string is split on commas later
                isinstance(value, list) and all(isinstance(v, str) for v in value))):
            return None
    if not any(k in _KINDS or k.startswith("list[") for k in kinds):
        return None  # an annotation this check does not know: the field's own check decides
    names = {"str": "text", "int": "an integer", "float": "a number", "bool": "true/false"}
    return " or ".join(names.get(k, "a list of names" if k.startswith("list[") else k) for k in kinds if k != "None")


RECORDED_NOT_SETTINGS = frozenset({"model_path", "quantization"})


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
    return {str(k).replace("-", "_"): v for k, v in data.items() if str(k) not in RECORDED_NOT_SETTINGS}
