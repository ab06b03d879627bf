"""A training setting is defined once, as a TrainConfig field with its metadata: the flags of every
training command, their help and the recipe checks come from it. A flag left out does not override
the recipe; ``None`` (``--no-early-stopping``, ``early_stopping_patience: null``) is a value that
merges like any other."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO, write

from attnlab.cli import build_parser, config_from_args
from attnlab.errors import UserError
from attnlab.training.config import TrainConfig, rate_text
from attnlab.training.settings import UNSET, help_text, meta

RECIPE = "lora_r: 4\nbatch_size: 8\nearly_stopping_patience: 5\ngroup_by_length: false\n"


def _train(tmp_path, *flags: str) -> TrainConfig:
    recipe = write(tmp_path / "r.yaml", RECIPE)
    return config_from_args(build_parser().parse_args(["train", "-o", str(tmp_path / "o"), "--config",
                                                       str(recipe), *flags]))


def test_a_flag_left_out_keeps_the_recipe_value(tmp_path):
    cfg = _train(tmp_path, "--lora-r", "2")
    assert (cfg.lora_r, cfg.batch_size, cfg.early_stopping_patience, cfg.group_by_length) == (2, 8, 5, False)
    assert cfg.epochs == TrainConfig().epochs  # neither the recipe nor a flag: the default


def test_disabled_is_a_value_not_a_missing_one(tmp_path):
    assert _train(tmp_path, "--no-early-stopping").early_stopping_patience is None
    assert _train(tmp_path, "--keep-checkpoints", "--torch-compile").keep_checkpoints is True
    off = write(tmp_path / "off.yaml", "early_stopping_patience: null\n")
    assert TrainConfig.from_sources(off).early_stopping_patience is None
    assert TrainConfig.from_sources(None, early_stopping_patience=None).early_stopping_patience is None
    on = write(tmp_path / "on.yaml", "early_stopping_patience: 5\n")
    assert TrainConfig.from_sources(on, early_stopping_patience=UNSET).early_stopping_patience == 5
    assert TrainConfig.from_sources(on, early_stopping_patience=None).early_stopping_patience is None


def test_no_flag_given_means_nothing_in_the_namespace():
    a = build_parser().parse_args(["train", "-o", "x"])
    assert not set(vars(a)) & (set(TrainConfig.field_names()) - {"output_dir"})


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_setting_is_one_field_that_the_flags_follow():
    actions = {}
    for a in _train_parser()._actions:
        actions.setdefault(a.dest, []).append(a)
    for f in dataclasses.fields(TrainConfig):
        assert help_text(f), f"{f.name} has no help"
        if not f.metadata.get("group"):
            continue
        assert f.name in actions, f"{f.name} has a group but no flag"
        for a in actions[f.name]:
            assert a.default is argparse.SUPPRESS
            assert help_text(f) in a.help or a.nargs == 0
            assert (a.choices or None) == (f.metadata.get("choices") or None) or a.nargs == 0


def test_help_comes_from_the_method_and_model_registries():
    from attnlab.models.registry import MODELS
    from attnlab.training.methods import METHODS

    helps = {a.dest: a.help for a in _train_parser()._actions}
    assert all(name in helps["method"] for name in METHODS)
    assert all(rate_text(m.learning_rate) in helps["learning_rate"] for m in METHODS.values())
    for src in MODELS.values():
        for lr in src.learning_rates.values():
            assert f"{rate_text(lr)} for {src.name}" in helps["learning_rate"]


def test_building_the_parser_imports_no_torch():
    code = "import sys; from attnlab.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("yaml_text", "words"), [
    ("batch_size: big\n", "'big' is not an integer (--batch-size)"),
    ("learning_rate: 5e-4\n", "5.0e-4 rather than 5e-4"),  # PyYAML reads 5e-4 as text: say so
    ("early_stopping_patience: 0\n", "or --no-early-stopping"),
    ("precision: fp8\n", "'fp8' is not one of auto, bf16, fp32"),
    ("group_by_length: sometimes\n", "(setting group_by_length)"),
    ("run_name: 3\n", "3 is not text"),
])
def test_a_bad_recipe_value_is_one_line_naming_it(tmp_path, yaml_text, words):
    with pytest.raises(UserError) as err:
        TrainConfig.from_sources(write(tmp_path / "r.yaml", yaml_text))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_misspelt_metadata_key_is_an_error():
    with pytest.raises(TypeError, match="grop"):
        meta("help", grop="training")


def test_the_benchmarks_sst2_config_turns_early_stopping_off():
    spec = importlib.util.spec_from_file_location("bench_common", REPO / "benchmarks" / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.sst2_config("some/folder", method="head")
    assert (cfg.data, cfg.data_dir, cfg.method, cfg.early_stopping_patience) == ("sst2", "some/folder", "head", None)
