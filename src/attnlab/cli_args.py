"""What ``attnlab``'s commands share: the command registry (``command``), value types with one-line
errors, JSON printing, and the training settings' flags, derived from the ``TrainConfig`` fields
(their type, default, help and group), so a setting is defined once (training/config.py) and every
command that trains shows the same flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Callable
from typing import Any

QUICKSTART_DIR = "runs/quickstart"  # where `attnlab quickstart` writes, and where `attnlab serve` looks by default


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} is not positive")
    return v


def _thread_count(s: str) -> int:
    from attnlab.training.config import MAX_THREADS

    v = _positive_int(s)
    if v > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{v} threads is too many (at most {MAX_THREADS}: one per core)")
    return v


def _port(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a port number") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{v} is not a TCP port (1..65535)")
    return v


def _number(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a number") from None


# -- shared flag groups: derived from the TrainConfig fields ---------------------------------------

class _SettingFlag(argparse.Action):
    """Stores one training setting: the value given, or a switch's fixed value (``nargs=0``, the value
    in ``const``). Its help is built from the setting when shown: ``--method`` lists the registered
    methods, which ``attnlab --help`` must not wait for."""

    def __init__(self, option_strings: list[str], dest: str, *, describe: Callable[[], str], **kwargs: Any):
        self._describe = describe
        super().__init__(option_strings, dest, **kwargs)

    @property  # type: ignore[override]
    def help(self) -> str:
        return self._describe().replace("%", "%%")  # argparse %-formats help texts

    @help.setter
    def help(self, value: str | None) -> None:  # argparse's __init__ sets it; the setting describes itself
        pass

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def _setting_help(f: Any, default: Any) -> str:
    """The field's help and its default: the setting's own (``default`` SUPPRESS) or the command's."""
    from attnlab.training import settings

    note = (settings.default_text(f) if default is argparse.SUPPRESS
            else settings.default_words(f) if default is None else settings.format_value(default))
    return settings.help_text(f) + (f" (default: {note})" if note else "")


def _value_type(hint: Any, positive: bool) -> Callable[[str], Any] | None:
    """How a flag parses its text, from the field's type hint (None: kept as text)."""
    kinds = set(typing.get_args(hint)) or {hint}
    if float in kinds:
        return _number
    if int in kinds:
        return _positive_int if positive else int
    return None


def _add_setting(g: Any, f: Any, hint: Any, default: Any) -> None:
    """``f``'s flag (a typed value; none for a bool) and its switches, all storing into ``f.name``."""
    from attnlab.training import settings

    if hint is not bool:
        kind = _value_type(hint, positive=bool(f.metadata.get("positive")))
        g.add_argument(*settings.flags(f), dest=f.name, action=_SettingFlag, type=kind, default=default,
                       choices=f.metadata.get("choices"), describe=lambda: _setting_help(f, default))
    for s in f.metadata.get("switches", ()):
        g.add_argument(s.flag, dest=f.name, action=_SettingFlag, nargs=0, const=s.value, default=default,
                       describe=lambda s=s: s.help or settings.help_text(f))


def _add_settings(p: argparse.ArgumentParser, *, only: str | None = None, skip: tuple[str, ...] = (),
                  defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flags of the TrainConfig settings, in argument groups by their ``group`` (or only group
    ``only``); returns the groups by title. Without ``defaults`` a flag left out is absent from the
    namespace, so it never overrides a recipe; with them (commands that read the values themselves)
    a missing name defaults to None."""
    from attnlab.training.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    fields = [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("group") and f.name not in skip]
    groups: dict[str, Any] = {}
    for title in dict.fromkeys(f.metadata["group"] for f in fields):  # in order of first appearance
        if only not in (None, title):
            continue
        groups[title] = p.add_argument_group(title)
        for f in (f for f in fields if f.metadata["group"] == title):
            default = argparse.SUPPRESS if defaults is None else defaults.get(f.name)
            _add_setting(groups[title], f, hints[f.name], default)
    return groups


def add_data_args(p: argparse.ArgumentParser, default: str | None = "movie-snippets") -> None:
    """The data-source flags (``--data`` with ``default``), for commands other than training."""
    from attnlab.training.config import DATA

    _add_settings(p, only=DATA, defaults={"data": default})


def add_long_text_args(p: argparse.ArgumentParser) -> None:
    """How commands that classify read texts longer than the run's max_length (attnlab.inference.long_text)."""
    g = p.add_argument_group("long texts")
    g.add_argument("--long-text", choices=["truncate", "chunk"], default="truncate", help="texts longer than the "
                   "run's max_length: truncate (default: the first max_length tokens decide) or chunk (overlapping "
                   "windows of max_length tokens, each scored, their probabilities combined)")
    g.add_argument("--long-text-aggregate", choices=["mean", "max"], default="mean", help="with --long-text chunk: "
                   "mean (default) or per-class max of the windows' probabilities")
    g.add_argument("--long-text-stride", type=int, metavar="TOKENS", help="with --long-text chunk: tokens that "
                   "consecutive windows share (default: a quarter of max_length)")


def long_text_kwargs(a: argparse.Namespace) -> dict[str, Any]:
    """The Predictor arguments of :func:`add_long_text_args`' flags."""
    return {"long_text": a.long_text, "long_text_aggregate": a.long_text_aggregate,
            "long_text_stride": a.long_text_stride}


def add_train_args(p: argparse.ArgumentParser, methods_flag: bool = False) -> None:
    """A flag for every TrainConfig setting with a group (``--method`` left out where the command
    takes ``--methods``), plus ``--config``, ``--overwrite`` and ``--no-progress``."""
    from attnlab.training.config import BOOKKEEPING, MODEL

    groups = _add_settings(p, skip=("method",) if methods_flag else ())
    groups[MODEL].add_argument("--config", help="recipe YAML (a file, or a packaged recipe's name) with any of "
                               "the settings below; flags override it")
    g = groups[BOOKKEEPING]
    g.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(a: argparse.Namespace, **extra: Any):
    """Defaults, then ``--config``'s recipe, then the setting flags given (one left out is not in
    ``a``: it keeps the recipe's value), then ``extra``."""
    from attnlab.training.config import TrainConfig

    given = {k: v for k, v in vars(a).items() if k in TrainConfig.field_names()}
    return TrainConfig.from_sources(getattr(a, "config", None), **(given | extra))


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``fn`` as ``attnlab <name>``; its docstring is the help text."""

    def wrap(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_args, fn)
        return fn

    return wrap




def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))
