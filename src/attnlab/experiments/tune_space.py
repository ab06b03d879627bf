"""The search space of ``attnlab tune``: which settings can be searched, the default ranges around a
base config, ``--search NAME=...`` parsing, and the checks that make a bad space fail before the
first trial."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from attnlab.errors import UserError
from attnlab.training.config import TrainConfig
from attnlab.training.methods import lora_methods


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2e}" if v and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.4g}"
    return str(v)


@dataclass(frozen=True)
class Range:
    """Sample between ``low`` and ``high`` (integers for integer settings); ``log``: log-uniformly."""

    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"{fmt_value(self.low)} .. {fmt_value(self.high)}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Choice:
    """Sample one of ``values``."""

    values: tuple

    def describe(self) -> str:
        return "{" + ", ".join(fmt_value(v) for v in self.values) + "}"


Spec = Range | Choice | None  # None: not searched, the base config's value is used

# setting -> the TrainingArguments field a trial sets (None: applied when the model is built)
SEARCHABLE: dict[str, str | None] = {
    "learning_rate": "learning_rate", "epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size",
    "warmup_ratio": "warmup_steps", "weight_decay": "weight_decay",
    "lora_r": None, "lora_alpha": None, "lora_dropout": None, "lora_top_layers": None,
}
INTEGER = frozenset({"epochs", "batch_size", "lora_r", "lora_alpha", "lora_top_layers"})
ADAPTER_ONLY = frozenset({"lora_r", "lora_alpha", "lora_dropout", "lora_top_layers"})


def default_space(base: TrainConfig, lora: bool, learning_rate: float) -> dict[str, Spec]:
    """The default search space around ``base``: learning rate log-uniform within 5x of
    ``learning_rate`` (the method's default), epochs around ``base.epochs`` (not searched when
    ``max_steps`` fixes the budget), batch size half/same/double, warmup 0-20%; with ``lora`` (the
    method takes the LoRA settings) also LoRA rank and alpha."""
    e = base.epochs
    low = max(1, math.floor(e / 2))
    b = base.batch_size
    space: dict[str, Spec] = {
        "learning_rate": Range(learning_rate / 5, min(learning_rate * 5, 0.5), log=True),
        "epochs": None if base.max_steps > 0 else Range(low, max(low + 1, math.ceil(1.5 * e))),
        "batch_size": Choice(tuple(sorted({max(1, b // 2), b, 2 * b}))),
        "warmup_ratio": Range(0.0, 0.2),
    }
    if lora:
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


def resolve_space(base: TrainConfig, lora: bool, learning_rate: float, space: dict[str, Any] | None = None,
                  fixed: Iterable[str] = ()) -> dict[str, Range | Choice]:
    """The searched settings: :func:`default_space`, updated by ``space``, minus ``fixed`` names
    (held at ``base``'s value). Every range end and choice is checked against the config's own
    validation, so a bad space fails before the first trial."""
    space = dict(space or {})
    method = base.method
    for name in [*space, *fixed]:
        if name not in SEARCHABLE:
            raise UserError(f"'{name}' cannot be searched", where="--search", fix=f"pick from {', '.join(SEARCHABLE)}")
        if name in ADAPTER_ONLY and not lora and (name in fixed or space.get(name) is not None):
            raise UserError(f"{name} is a LoRA setting; method {method} has no adapters",
                            where=f"--{name.replace('_', '-')}",
                            fix=f"drop it, or tune --method {' or '.join(lora_methods())}")
    both = sorted(set(space) & set(fixed))
    if both:
        raise UserError(f"{both[0]} is both fixed by a flag and searched", where="--search",
                        fix=f"drop --{both[0].replace('_', '-')} or --search {both[0]}=...")
    merged = default_space(base, lora, learning_rate) | {k: _normalise(k, v) for k, v in space.items()}
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
                replace(base, **{name: cast(name, v)}).validate()
            except UserError as exc:
                raise UserError(f"search space for {name}: {exc.what}", where="--search", fix=exc.fix) from None
        out[name] = spec
    if not out:
        raise UserError("nothing to search: every setting is fixed", where="attnlab tune",
                        fix="leave at least one of " + ", ".join(SEARCHABLE) + " unfixed")
    return out


def cast(name: str, v: Any) -> Any:
    if name in INTEGER:
        return float(int(v)) if name == "epochs" else int(v)
    return float(v)


def suggest(trial: Any, space: dict[str, Range | Choice]) -> dict[str, Any]:
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


__all__ = ["ADAPTER_ONLY", "INTEGER", "SEARCHABLE", "Choice", "Range", "Spec", "cast", "default_space", "fmt_value",
           "parse_search", "resolve_space", "suggest"]
