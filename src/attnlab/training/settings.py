"""How a training setting is declared, once: a dataclass field whose ``metadata`` carries its help,
its CLI group and the few facts a type does not say (PEFT's ``LoraConfig`` style). The CLI flags,
recipe validation, ``config.yaml`` and the generated reference all read these fields; nothing lists
the settings a second time.

``metadata`` keys (all optional but ``help``):

* ``help``: what the setting does (a string, or a function returning one, called only when the
  text is shown: a help built from the method registry must not slow down ``attnlab --help``);
* ``group``: the argument group of ``attnlab train --help``; without one no flag is derived (a
  recipe-only setting, or one whose flag each command declares, like ``--output-dir``);
* ``flags``: the option strings (default ``--name-with-dashes``), e.g. ``("--learning-rate", "--lr")``;
* ``choices``: the allowed values (argparse choices and validation both use them);
* ``positive``: the value must be > 0 (the flag parses a positive integer);
* ``default_text``: the default in words where the value alone does not say it (``None`` meaning
  "per method", "all cores", ...); a string or a function, like ``help``;
* ``switches``: value-less flags that set the field to a fixed value, ``Switch("--no-early-stopping",
  None, ...)``; a ``bool`` field has only its switches.

:func:`check_fields` checks each value against its field's type with pydantic (strict: ``"3"`` is no
integer, ``true`` no number), then against ``choices`` and ``positive``; ranges no type or fact says
stay as explicit checks next to the dataclass.

"Not given" is :data:`UNSET` (or, on the command line, a flag left out); ``None`` is a value (for
``early_stopping_patience``: disabled), merged like any other.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attnlab.errors import UserError


class _Unset:
    """The type of :data:`UNSET`."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "not given": an override with this value leaves the recipe's (or default) value alone


@dataclass(frozen=True)
class Switch:
    """A value-less flag that sets its field to ``value`` (``--no-early-stopping`` sets ``None``)."""

    flag: str
    value: Any
    help: str | None = None  # default: the field's help


FACTS = frozenset({"help", "group", "flags", "choices", "positive", "default_text", "switches"})


def meta(help: str | Callable[[], str], **facts: Any) -> dict[str, Any]:
    """A setting's ``metadata``: ``field(default=16, metadata=meta("adapter rank", group="LoRA"))``
    (the keys are in the module docstring; a misspelt one is an error, not a silently ignored fact)."""
    unknown = set(facts) - FACTS
    if unknown:
        raise TypeError(f"unknown setting fact(s): {', '.join(sorted(unknown))}")
    return {"help": help, **facts}


def _text(value: str | Callable[[], str] | None) -> str | None:
    return value() if callable(value) else value


def help_text(f: dataclasses.Field) -> str:
    return _text(f.metadata.get("help")) or ""


def flags(f: dataclasses.Field) -> tuple[str, ...]:
    """The option strings of the flag that gives ``f`` a value: ``flags``, else ``--name-with-dashes``
    (a ``bool`` field has no such flag, only its switches)."""
    return tuple(f.metadata.get("flags") or (f"--{f.name.replace('_', '-')}",))


def field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def format_value(value: Any) -> str:
    """A default or recipe value as a user types it: ``3`` for 3.0, ``a,b`` for a list."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def default_words(f: dataclasses.Field) -> str | None:
    """The default in words, where the field's ``default_text`` gives them ("per method", "all rows")."""
    return _text(f.metadata.get("default_text"))


def default_text(f: dataclasses.Field) -> str | None:
    """The default as help shows it: its words, else the value (None when it is ``None`` or empty and
    no words describe it: nothing to say)."""
    value = field_default(f)
    return default_words(f) or (None if value in (None, []) else format_value(value))


# -- validation -----------------------------------------------------------------------------------

_WORDS = {int: "an integer", float: "a number", str: "text", bool: "true/false", list: "a list of names"}


def _words(hint: Any) -> str:
    """What a type hint accepts, in words: ``int | None`` -> "an integer"."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join(_WORDS.get(typing.get_origin(k) or k, str(k)) for k in kinds if k is not type(None))


@functools.cache
def _adapter(hint: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter  # imported on first validation, not at CLI start

    return TypeAdapter(hint, config=ConfigDict(strict=True))  # strict: "3" is no int, True no number


def _fits(value: Any, hint: Any) -> bool:
    from pydantic import ValidationError

    try:
        _adapter(hint).validate_python(value)
    except ValidationError:
        return False
    return True


def where(f: dataclasses.Field) -> str:
    """Where a bad value is set: its flag, or the setting's name where no flag takes a value (a
    recipe-only setting, a ``bool`` set by switches)."""
    takes_value = f.metadata.get("group") and f.type not in (bool, "bool")
    return flags(f)[0] if takes_value else f"setting {f.name}"


def invalid(f: dataclasses.Field, why: str, fix: str) -> UserError:
    return UserError(f"invalid {f.name}: {why}", where=where(f), fix=fix)


def _type_fix(value: Any, want: str) -> str:
    if isinstance(value, str) and want.startswith("a number"):
        try:
            float(value)
        except ValueError:
            pass
        else:  # PyYAML reads 5e-4 as text; 5.0e-4 is a number
            return f"pass {want}; in YAML write a dot in the mantissa, e.g. 5.0e-4 rather than 5e-4"
    return f"pass {want}"


def _positive_fix(f: dataclasses.Field) -> str:
    fix = "pass an integer > 0"
    if field_default(f) is None:
        fix += ", or leave it out"
    return fix + "".join(f", or {s.flag}" for s in f.metadata.get("switches", ()) if s.value is None)


def check_fields(cfg: Any) -> None:
    """Every field of the dataclass ``cfg`` against its type (pydantic, strict), and against the
    ``choices`` and ``positive`` facts of its metadata; the first bad value raises a one-line
    :class:`UserError`. Floats must be finite."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        if not _fits(value, hint):
            want = _words(hint)
            raise invalid(f, f"{value!r} is not {want}", _type_fix(value, want))
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid(f, f"{value!r} is not a number", "pass a finite number")
        choices = f.metadata.get("choices")
        if choices and value is not None and value not in choices:
            raise invalid(f, f"'{value}' is not one of {', '.join(choices)}", "pick one of those")
        if f.metadata.get("positive") and value is not None and value <= 0:
            raise invalid(f, f"{value} is not positive", _positive_fix(f))
