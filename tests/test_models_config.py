import pytest
from conftest import write

from attnlab import runtime
from attnlab.errors import UserError
from attnlab.models import list_models, load_pretrained, resolve_model
from attnlab.training.config import TrainConfig
from attnlab.training.settings import UNSET


def test_registry_lists_and_resolves_default():
    names = [r["name"] for r in list_models()]
    assert names[:3] == ["minilm-l6", "mpnet-base", "smollm2"]
    r = resolve_model("minilm-l6")
    assert r.source == "packaged" and (__import__("pathlib").Path(r.path) / "config.json").is_file()
    assert resolve_model(None).name == "minilm-l6"


def test_local_folder_and_errors(tmp_path):
    with pytest.raises(UserError, match=r"no config\.json"):
        resolve_model(str(tmp_path))
    write(tmp_path / "m" / "config.json", "{}")
    assert resolve_model(str(tmp_path / "m")).source == "local"
    with pytest.raises(UserError, match="not found"):
        resolve_model("./no/such/folder")
    with pytest.raises(UserError, match="unknown model"):
        resolve_model("a/b/c")


def test_hub_id_offline_is_one_line_error(monkeypatch):
    from transformers import AutoConfig

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="could not load 'someone/not-a-model'"):
        load_pretrained(AutoConfig.from_pretrained, resolve_model("someone/not-a-model"))


def test_config_layers_and_validation(tmp_path):
    recipe = write(tmp_path / "r.yaml", "method: full\nepochs: 2\nlora-r: 4\n")
    cfg = TrainConfig.from_sources(recipe, epochs=5.0, batch_size=UNSET)  # UNSET (not None) means "not given"
    assert (cfg.method, cfg.epochs, cfg.lora_r, cfg.batch_size) == ("full", 5.0, 4, 32)
    assert cfg.resolved_lora_alpha == 8
    with pytest.raises(UserError, match="unknown setting"):
        TrainConfig.from_sources(write(tmp_path / "bad.yaml", "epoch: 2\n"))
    with pytest.raises(UserError, match="not valid YAML"):
        TrainConfig.from_sources(write(tmp_path / "broken.yaml", "a: [1\n"))
    for bad in ({"learning_rate": 5.0}, {"batch_size": 0}, {"lora_dropout": 1.5}, {"epochs": "two"},
                {"precision": "fp8"}, {"batch_size": 2.5}):
        with pytest.raises(UserError, match="invalid"):
            TrainConfig.from_sources(None, **bad)


def test_precision_auto_follows_cpu_flags(monkeypatch):
    import torch

    cpu = torch.device("cpu")
    assert runtime.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    assert runtime.resolve_precision("auto", cpu) == "fp32"
    # AVX512-BF16 without AMX: faster than fp32 on AMD Zen 4/5, slower on an Intel Xeon with AMX hidden
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    for vendor, precision in (("AuthenticAMD", "bf16"), ("GenuineIntel", "fp32")):
        monkeypatch.setattr(runtime, "_cpuinfo_field", lambda name, v=vendor: v if name == "vendor_id" else "")
        assert runtime.resolve_precision("auto", cpu) == precision
    assert runtime.resolve_precision("bf16", cpu) == "bf16"


def test_a_runs_config_yaml_is_a_valid_recipe(tiny_runs):
    cfg = TrainConfig.from_sources(tiny_runs["lora"] / "config.yaml")
    assert cfg.method == "lora" and cfg.max_train_samples == 48
