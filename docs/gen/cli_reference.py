"""Generate the CLI and configuration reference from the code.

Walks ``attnlab.cli.build_parser()`` (every command, nested sub-commands too, every option, its
value type and default) and ``attnlab.training.TrainConfig`` (every field: its type, and the default,
help and argument group its ``metadata`` declares; flags that feed a setting take their default and
description from there too), lists the fine-tuning methods and every packaged recipe
``src/attnlab/recipes/*.yaml`` (validated by loading it), and writes:

* ``docs/reference/cli.md``            every command and flag
* ``docs/reference/configuration.md``  every training setting, the methods and the recipes
* ``docs/gen/methods.md``              the methods table (a snippet for other pages)
* ``docs/gen/quickstart_settings.md``  what ``attnlab quickstart`` runs (a snippet)
* ``docs/gen/data_formats.md``         named data sets, file formats, column names (a snippet)

    python docs/gen/cli_reference.py            # write
    python docs/gen/cli_reference.py --check    # exit 1 if a file is out of date
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

from _docgen import DOCS, GEN, REPO, banner, md_table, run_main

SCRIPT = "docs/gen/cli_reference.py"
CLI_MD = DOCS / "reference" / "cli.md"
CONFIG_MD = DOCS / "reference" / "configuration.md"
METHODS_MD = GEN / "methods.md"
QUICKSTART_MD = GEN / "quickstart_settings.md"
DATA_MD = GEN / "data_formats.md"
RECIPES = REPO / "src" / "attnlab" / "recipes"  # shipped in the wheel, found by name

RUN_SECTION = "the run"  # the settings without an argument group: a command's own flag, or a recipe's


# -- argparse walking ---------------------------------------------------------------------------

def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """``{name: (sub-parser, one-line help)}`` of a parser's sub-commands, in registration order."""
    out: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                if sub not in [s for s, _ in out.values()]:  # aliases point at the same parser
                    out[name] = (sub, helps.get(name, ""))
    return out


def walk_commands(parser: argparse.ArgumentParser, prefix: str = "attnlab"):
    """Yield ``(full command, parser, one-line help)`` for every (nested) command, depth first."""
    for name, (sub, short) in subcommands(parser).items():
        full = f"{prefix} {name}"
        yield full, sub, short
        yield from walk_commands(sub, full)


def option_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positionals a user types (help and sub-command dispatch left out)."""
    return [a for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction) and a.help != argparse.SUPPRESS]


def _type_name(action: argparse.Action) -> str:
    if action.nargs == 0:  # store_true/false, version, a setting's switch
        return "flag"
    if isinstance(action, argparse._CountAction):
        return "count"
    if action.choices is not None:
        return " | ".join(f"`{c}`" for c in action.choices)
    t = action.type
    name = getattr(t, "__name__", None) or type(t).__name__ if t is not None else "text"
    name = {"_positive_int": "positive integer", "int": "integer", "float": "number", "_number": "number",
            "str": "text", "Path": "path"}.get(name, name.lstrip("_").replace("_", " "))
    if action.nargs in ("*", "+"):
        name += " …"
    return name


def _fmt_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "`" + ",".join(map(str, value)) + "`" if value else "none"
    if isinstance(value, float) and value.is_integer():
        return f"`{value:g}`"
    return f"`{value}`"


def setting_field(action: argparse.Action, parser: argparse.ArgumentParser) -> dataclasses.Field | None:
    """The TrainConfig field an option of a training command sets (None for any other option)."""
    from attnlab.training.config import TrainConfig

    if not any("--config" in a.option_strings for a in parser._actions):
        return None
    return {f.name: f for f in dataclasses.fields(TrainConfig)}.get(action.dest)


def _setting_default(f: dataclasses.Field) -> str:
    from attnlab.training.settings import default_words, field_default

    return default_words(f) or _fmt_default(field_default(f))


def default_text(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    """The effective default of an option: argparse's, or TrainConfig's where the flag feeds it."""
    if isinstance(action, argparse._VersionAction):
        return "—"
    if isinstance(action, argparse._StoreFalseAction):
        return "on"
    if action.nargs == 0:
        return "off"
    if action.default not in (None, argparse.SUPPRESS):
        return _fmt_default(action.default)
    if not action.option_strings:
        return "required" if action.nargs not in ("*", "?") else "none"
    if action.required:
        return "required"
    f = setting_field(action, parser)
    return _setting_default(f) if f is not None else "none"


DEFAULT_NOTE = re.compile(r"\s*\(default: [^()]*\)")


def _help(action: argparse.Action, prog: str, default: str = "none") -> str:
    """The help text; its "(default: ...)" note is dropped where the default column says it already."""
    text = action.help or ""
    try:
        text = text % {"default": action.default, "prog": prog}
    except (KeyError, TypeError, ValueError):
        pass
    if default not in ("none", "—") or "(default: None)" in text:
        text = DEFAULT_NOTE.sub("", text).strip()
    return text


def _option_row(action: argparse.Action, parser: argparse.ArgumentParser, prog: str) -> tuple[str, ...]:
    default = default_text(action, parser)
    f = setting_field(action, parser)
    if f is not None and action.nargs != 0 and action.default is argparse.SUPPRESS:  # a setting's own flag:
        # its help without the "(default: ...)" note, which the default column shows
        from attnlab.training.settings import help_text

        return _names(action), _type_name(action), default, help_text(f)
    return _names(action), _type_name(action), default, _help(action, prog, default)


def _names(action: argparse.Action) -> str:
    if action.option_strings:
        long_first = sorted(action.option_strings, key=lambda s: (not s.startswith("--"), s))
        return ", ".join(f"`{s}`" for s in long_first)
    return f"`{action.metavar or action.dest}`"


def synopsis(full: str, parser: argparse.ArgumentParser) -> str:
    """A short, Python-version-independent usage line: required parts, then ``[options]``."""
    parts = [full]
    for a in option_actions(parser):
        if a.option_strings and a.required:
            parts.append(f"{a.option_strings[0]} {a.metavar or a.dest.upper()}")
        elif not a.option_strings:
            name = (a.metavar or a.dest).upper()
            parts.append(f"[{name} ...]" if a.nargs == "*" else f"{name} [{name} ...]" if a.nargs == "+" else
                         f"[{name}]" if a.nargs == "?" else name)
    if subcommands(parser):
        parts.append("COMMAND")
    if any(a.option_strings and not a.required for a in option_actions(parser)):
        parts.append("[options]")
    return " ".join(parts)


def _anchor(full: str) -> str:
    return full.replace(" ", "-")


def render_cli() -> str:
    from attnlab.cli import build_parser

    parser = build_parser()
    commands = list(walk_commands(parser))
    out = [banner(SCRIPT), "# CLI reference\n",
           "Every `attnlab` command and flag, generated from the argument parser "
           f"(`attnlab.cli.build_parser()`) by `{SCRIPT}`. Flags that feed a training setting show that "
           "setting's default from `TrainConfig` (see [Settings and recipes](configuration.md)); "
           "`attnlab COMMAND --help` prints the same text in the terminal.\n",
           md_table(["command", "what it does"], [(f"[`{c}`](#{_anchor(c)})", h) for c, _, h in commands]),
           "## Global options\n",
           "Given before the command, e.g. `attnlab --verbose train ...`.\n"]
    rows = [("`-h`, `--help`", "flag", "—", "show the help of `attnlab` or of a command and exit")]
    rows += [_option_row(a, parser, "attnlab") for a in option_actions(parser)]
    out.append(md_table(["option", "value", "default", "description"], rows))
    for full, sub, short in commands:
        out.append(f"## {full} {{#{_anchor(full)}}}\n")
        desc = (sub.description or short or "").strip()
        if desc:
            out.append(desc + "\n")
        out.append(f"```text\n{synopsis(full, sub)}\n```\n")
        for group in sub._action_groups:
            acts = [a for a in group._group_actions if a in option_actions(sub)]
            if not acts:
                continue
            title = {"positional arguments": "arguments", "optional arguments": "options"}.get(group.title,
                                                                                            group.title)
            out.append(f"**{title}**\n")
            out.append(md_table(["option", "value", "default", "description"],
                                [_option_row(a, sub, full) for a in acts]))
    return "\n".join(out)


# -- TrainConfig, methods, recipes --------------------------------------------------------------

def config_fields() -> list[tuple[str, dataclasses.Field]]:
    """``(section, field)`` of every TrainConfig field: its argument group (the run's own settings,
    which have none, last), in field order within each."""
    from attnlab.training.config import TrainConfig

    fields = dataclasses.fields(TrainConfig)
    sections = list(dict.fromkeys(f.metadata.get("group") or RUN_SECTION for f in fields))
    sections.append(sections.pop(sections.index(RUN_SECTION)))
    return [(s, f) for s in sections for f in fields if (f.metadata.get("group") or RUN_SECTION) == s]


def _type_text(f: dataclasses.Field) -> str:
    return str(f.type).replace("|", "or").replace("typing.", "")


def _field_actions(field: str, parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Flags that set ``field``: its value flag and its switches (``--no-early-stopping``)."""
    return [a for a in option_actions(parser) if a.option_strings and a.dest == field]


def flags_for(field: str, parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in _field_actions(field, parser)
            for s in sorted(a.option_strings, key=lambda s: (not s.startswith("--"), s))]


def render_methods() -> str:
    from attnlab.training.methods import METHODS

    rows = [(f"`{m.name}`", m.description, f"`{m.learning_rate:g}`", "adapter (PEFT folder)" if m.is_adapter
             else "whole model") for m in METHODS.values()]
    return banner(SCRIPT) + md_table(["method", "what trains", "default learning rate", "`model/` holds"], rows)


def recipe_files() -> list[Path]:
    return sorted(RECIPES.glob("*.yaml")) + sorted(RECIPES.glob("*.yml"))


def _recipe_intro(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(ln for ln in lines if ln)


def render_recipes() -> str:
    from attnlab.training.config import TrainConfig

    files = recipe_files()
    if not files:
        return "No recipes yet: add a YAML file to `src/attnlab/recipes/`.\n"
    defaults = TrainConfig()
    defaults.validate()
    out = [md_table(["recipe", "method", "model", "what it is for"],
                    [(f"[`{p.stem}`](#{p.stem})", f"`{TrainConfig.from_sources(p).method}`",
                      f"`{TrainConfig.from_sources(p).model}`", _recipe_intro(p.read_text(encoding='utf-8')))
                     for p in files])]
    for p in files:
        text = p.read_text(encoding="utf-8")
        cfg = TrainConfig.from_sources(p)  # raises on an invalid recipe: the docs never show one
        out.append(f"### {p.stem} {{#{p.stem}}}\n")
        intro = _recipe_intro(text)
        if intro:
            out.append(intro + "\n")
        out.append(f"```yaml\n{text.rstrip()}\n```\n")
        changed = [(f"`{k}`", _fmt_default(v), _fmt_default(getattr(defaults, k)))
                   for k, v in cfg.to_dict().items() if v != getattr(defaults, k)]
        if changed:
            out.append("Differs from the defaults in:\n")
            out.append(md_table(["setting", "recipe", "default"], changed))
        else:
            out.append("Every value equals the default; the file spells them out as a starting point.\n")
        out.append(f"```bash\nattnlab train --config {p.stem} --output-dir runs/{p.stem}\n```\n")
    return "\n".join(out)


def render_configuration() -> str:
    from attnlab.cli import build_parser

    parser = build_parser()
    train = subcommands(parser).get("train", (parser, ""))[0]
    out = [banner(SCRIPT), "# Settings and recipes\n",
           "A training run is described by one `TrainConfig` (`attnlab.training.config`). Its values come "
           "from three places, later ones winning:\n",
           "1. the defaults below;\n2. a **recipe**: a YAML file, or a packaged recipe's name, given with "
           "`--config`, a flat mapping of any of these settings (`-` and `_` both work in the names);\n"
           "3. command-line flags.\n",
           "The resolved settings (method defaults filled in, plus `model_path`, the folder the weights "
           "were read from, and `adapter`, whether `model/` is a PEFT adapter) are saved as `config.yaml` in "
           "the run directory; see "
           "[What a run writes](../get-started/run-directory.md). "
           f"This page is generated from the code by `{SCRIPT}`.\n",
           "## Settings\n"]
    from attnlab.training.settings import help_text

    by_section: dict[str, list[dataclasses.Field]] = {}
    for section, f in config_fields():
        by_section.setdefault(section, []).append(f)
    for section, items in by_section.items():
        out.append(f"### {section[:1].upper() + section[1:]}\n")
        rows = [(f"`{f.name}`", _type_text(f), _setting_default(f),
                 ", ".join(f"`{s}`" for s in flags_for(f.name, train)) or "recipe only", help_text(f))
                for f in items]
        out.append(md_table(["setting", "type", "default", "flag", "notes"], rows))
    out += ["## Methods\n", "`method` picks one of the registered fine-tuning methods; "
            "[Full fine-tuning, LoRA, QLoRA](../concepts/lora-qlora.md) explains them.\n",
            render_methods().split("\n", 1)[1],
            "## Recipes\n", "The example recipes ship with attnlab (`src/attnlab/recipes/`, installed as "
            "`attnlab/recipes/`), each checked by loading it into `TrainConfig`. Pass one by name, "
            "`--config lora-minilm`, or a YAML file of your own by path; a file that exists wins over a name. "
            "Flags given beside `--config` override the recipe.\n", render_recipes()]
    return "\n".join(out)


def render_quickstart() -> str:
    from attnlab import cli

    settings = dict(getattr(cli, "QUICKSTART", {}))
    parser = subcommands(cli.build_parser()).get("quickstart", (None, ""))[0]
    if parser is not None:
        for a in option_actions(parser):
            if a.dest in ("methods", "output_dir") and a.default not in (None, argparse.SUPPRESS):
                settings[a.dest] = a.default
    rates = getattr(cli, "QUICKSTART_LEARNING_RATES", {})
    if rates:
        settings["learning_rate"] = ", ".join(f"{m} {r:g}" for m, r in rates.items())
    rows = [(f"`{k}`", _fmt_default(v)) for k, v in settings.items()]
    return banner(SCRIPT) + md_table(["setting", "value"], rows)


def render_data_formats() -> str:
    from attnlab.data import DATASETS
    from attnlab.data.files import (
        LABEL_MAX_CLASSES,
        LABEL_NAMES,
        SAMPLE_ROWS,
        SUFFIXES,
        TEXT_MIN_DISTINCT,
        TEXT_MIN_WORDS,
        TEXT_NAMES,
    )

    formats: dict[str, list[str]] = {}
    for suffix, fmt in SUFFIXES.items():
        formats.setdefault(fmt, []).append(f"`{suffix}`")
    return "\n".join([
        banner(SCRIPT),
        "**Named data sets** (`--data NAME`):\n",
        md_table(["name", "what it is"], [(f"`{k}`", v) for k, v in DATASETS.items()]),
        "**File formats** (by suffix):\n",
        md_table(["format", "suffixes"], [(k, ", ".join(v)) for k, v in formats.items()]),
        "**Column detection.** A flag (`--text-column` / `--label-column`) wins; else exactly one column "
        "named like one below (case-insensitive); else the column whose *content* fits, judged on the first "
        f"{SAMPLE_ROWS:,} rows: the text column is the one column of free text (at least {TEXT_MIN_WORDS:g} words "
        f"per value on average, at least {TEXT_MIN_DISTINCT:.0%} distinct values), the label column the one with "
        f"2 to {LABEL_MAX_CLASSES:,} distinct values and at most half as many as rows. Two columns that fit "
        "equally are a one-line error naming both; `attnlab data` says which columns were chosen and why.\n",
        md_table(["column", "names tried"], [("text", ", ".join(f"`{n}`" for n in TEXT_NAMES)),
                                             ("label", ", ".join(f"`{n}`" for n in LABEL_NAMES))]),
    ])


def render() -> dict[Path, str]:
    return {CLI_MD: render_cli(), CONFIG_MD: render_configuration(), METHODS_MD: render_methods(),
            QUICKSTART_MD: render_quickstart(), DATA_MD: render_data_formats()}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
