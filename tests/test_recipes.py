"""Recipes ship inside the package (``attnlab/recipes/*.yaml``) and ``--config`` finds them by name;
a file that exists always wins over a name, and the wheel carries them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write

from attnlab.cli import build_parser, config_from_args
from attnlab.errors import UserError
from attnlab.training.config import TrainConfig, load_recipe, recipe_names

PACKAGED = resources.files("attnlab") / "recipes"


def test_a_bare_name_reads_the_packaged_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing here is called lora-minilm
    packaged = yaml.safe_load((PACKAGED / "lora-minilm.yaml").read_text(encoding="utf-8"))
    assert load_recipe("lora-minilm") == load_recipe("lora-minilm.yaml") == packaged
    assert {"full-minilm", "head-minilm", "lora-minilm"} <= set(recipe_names())
    # what `attnlab train --config lora-minilm --lora-r 8 -o DIR` resolves to, flags over the recipe
    a = build_parser().parse_args(["train", "--config", "lora-minilm", "--lora-r", "8", "-o", str(tmp_path / "r")])
    cfg = config_from_args(a)
    assert (cfg.method, cfg.learning_rate, cfg.lora_dropout, cfg.lora_r) == ("lora", 5e-4, 0.05, 8)
    assert TrainConfig.from_sources("head-minilm").method == "head"


def test_a_file_that_exists_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "lora-minilm.yaml", "method: full\nepochs: 1\n")
    write(tmp_path / "head-minilm", "method: full\n")
    assert load_recipe("lora-minilm.yaml") == {"method": "full", "epochs": 1}
    assert load_recipe("head-minilm") == {"method": "full"}
    assert load_recipe("lora-minilm")["method"] == "lora"  # no file of that exact name: the packaged one


@pytest.mark.parametrize("ref", ["lora-minilmm", "nope.yaml", "recipes/lora-minilm.yaml"])
def test_an_unknown_name_is_one_line_naming_the_choices(tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="recipe file not found") as err:
        load_recipe(ref)
    line = str(err.value)
    assert "\n" not in line and ref in line
    assert all(name in line for name in recipe_names())


def test_the_wheel_ships_the_recipes(tmp_path):
    """Build from a copy of the sources, so that nothing (build/, *.egg-info) lands in the repository."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "--quiet",
                           "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("attnlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("attnlab/recipes/") for n in names if n.startswith("attnlab/recipes/")}
    assert "lora-minilm.yaml" in shipped
    assert shipped == {f"{name}.yaml" for name in recipe_names()}
    assert not any(Path(n).parts[0] == "recipes" for n in names)  # not a top-level folder of its own
