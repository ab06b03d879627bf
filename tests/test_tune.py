"""``attnlab tune``: the search space and its errors, and a 2-trial Optuna search on a tiny SST-2 slice
that writes best.yaml (a recipe ``attnlab train`` accepts as-is), the trials table, CSV, JSON and
plot, and leaves no trial checkpoints behind."""

from __future__ import annotations

import csv
import json

import pytest

from attnlab.errors import UserError
from attnlab.experiments.tune import (
    OUTPUTS,
    Choice,
    Range,
    _hide_password,
    default_space,
    parse_search,
    resolve_space,
    tune,
)
from attnlab.training.config import TrainConfig

pytest.importorskip("optuna")


def _run(argv: list[str]) -> int:
    from attnlab.cli import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code)


def _tiny(sst2_dir, model) -> list[str]:
    return ["--data", "sst2", "--data-dir", str(sst2_dir), "--model", str(model), "--max-train-samples", "32",
            "--max-eval-samples", "16", "--max-steps", "2", "--num-threads", "1", "--no-progress"]


def test_default_space_follows_the_method_and_budget():
    lora = default_space(TrainConfig(method="lora"), True, 5e-4)
    lr = lora["learning_rate"]
    assert lr.log and (lr.low, lr.high) == pytest.approx((1e-4, 2.5e-3))  # 5x either side of the default
    assert lora["epochs"] == Range(1, 5) and lora["batch_size"] == Choice((16, 32, 64))
    assert {"lora_r", "lora_alpha"} <= set(lora)
    head = default_space(TrainConfig(method="head", max_steps=10), False, 2e-3)
    assert "lora_r" not in head and head["epochs"] is None  # max_steps fixes the budget: epochs do not matter


def test_space_overrides_and_mistakes():
    cfg = TrainConfig(method="lora")
    space = resolve_space(cfg, True, 5e-4, {"batch_size": [8, 16], "lora_alpha": None}, fixed=["warmup_ratio"])
    assert space["batch_size"] == Choice((8, 16)) and "lora_alpha" not in space and "warmup_ratio" not in space
    assert parse_search(["learning-rate=1e-5..1e-3", "lora_r=2,4,4", "epochs=off"]) == {
        "learning_rate": Range(1e-5, 1e-3, log=True), "lora_r": Choice((2, 4)), "epochs": None}
    head = TrainConfig(method="head")
    bad = [
        (lambda: resolve_space(head, False, 2e-3, fixed=["lora_r"]), "LoRA setting"),
        (lambda: resolve_space(head, False, 2e-3, {"lora_alpha": [8, 16]}), "LoRA setting"),
        (lambda: resolve_space(cfg, True, 5e-4, {"dropout": [0.1]}), "cannot be searched"),
        (lambda: resolve_space(cfg, True, 5e-4, {"learning_rate": (1e-3, 1e-5)}), "empty"),
        (lambda: resolve_space(cfg, True, 5e-4, {"learning_rate": (1e-4, 2.0)}), "learning_rate"),
        (lambda: resolve_space(cfg, True, 5e-4, {"batch_size": [0, 8]}), "batch_size"),
        (lambda: resolve_space(cfg, True, 5e-4, {"lora_r": [2.5]}), "integers"),
        (lambda: resolve_space(cfg, True, 5e-4, {"batch_size": [8]}, fixed=["batch_size"]), "both"),
        (lambda: resolve_space(head, False, 2e-3, fixed=["learning_rate", "epochs", "batch_size", "warmup_ratio"]),
         "nothing to search"),
        (lambda: parse_search(["batch_size"]), "NAME="),
        (lambda: parse_search(["batch_size=a,b"]), "integers"),
        (lambda: tune(cfg, 0, "unused"), "trials"),
        (lambda: tune(cfg, 2, "unused", timeout=-1), "timeout"),
    ]
    for call, match in bad:
        with pytest.raises(UserError, match=match):
            call()
    assert _hide_password("postgresql://me:s3cret@db:5432/optuna") == "postgresql://me:***@db:5432/optuna"


def test_tune_writes_a_recipe_that_train_accepts(tmp_path, sst2_dir, tiny_bert, capsys):
    from attnlab.cli import main

    out = tmp_path / "tune"
    assert main(["tune", *_tiny(sst2_dir, tiny_bert), "--method", "lora", "--trials", "2", "--batch-size", "16",
                 "--search", "lora_r=2,4", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best: trial" in printed and str(out / "best.yaml") in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no trial checkpoints or temp folders left

    result = json.loads((out / "trials.json").read_text())
    trials = result["trials"]
    assert [t["trial"] for t in trials] == [0, 1] and all(t["state"] == "complete" for t in trials)
    assert set(result["space"]) == {"learning_rate", "warmup_ratio", "lora_r", "lora_alpha"}  # batch size fixed
    best = result["best"]
    assert best["objective"] == max(t["objective"] for t in trials)
    with (out / "trials.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2
    assert "(best)" in (out / "trials.md").read_text()

    cfg = TrainConfig.from_sources(out / "best.yaml")  # a valid recipe holding the best trial's settings
    for name, value in best["params"].items():
        assert getattr(cfg, name) == value, name
    assert cfg.batch_size == 16 and cfg.method == "lora" and cfg.max_steps == 2

    run = tmp_path / "best-run"
    assert main(["train", "--config", str(out / "best.yaml"), "-o", str(run), "--no-progress"]) == 0
    trained = json.loads((run / "metrics.json").read_text())
    assert trained["training"]["learning_rate"] == pytest.approx(best["params"]["learning_rate"])

    # a second search into the same folder needs --overwrite
    assert main(["tune", *_tiny(sst2_dir, tiny_bert), "--method", "lora", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "--trials"),
    (["--method", "head", "--lora-r", "8"], "LoRA setting"),
    (["--search", "bogus=1,2"], "cannot be searched"),
    (["--search", "learning_rate=1e-3..1e-5"], "empty"),
    (["--timeout", "0"], "timeout"),
    (["--storage", "nonsense://x"], "Optuna study"),
])
def test_bad_tune_input_is_one_line(tmp_path, capsys, args, message):
    assert _run(["tune", "-o", str(tmp_path / "t"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "t").exists()
