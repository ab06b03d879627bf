"""Safe loading: weights come from safetensors, pickles never run, remote code is never trusted.

Source checks parse every module under src/attnlab with ``ast`` (comments and strings do not count):
no ``torch.load`` without ``weights_only=True``, no ``pickle``/``yaml.load``/``yaml.unsafe_load``,
no ``trust_remote_code=True``. Behaviour checks plant a pickle that would create a file when
unpickled and show that nothing attnlab does with it runs it.
"""

from __future__ import annotations

import ast
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.errors import UserError

SRC = Path(__file__).resolve().parents[1] / "src" / "attnlab"
PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib"}


def calls(name: str):
    """Every call to ``name`` (dotted, as written, e.g. ``torch.load``) in the package source."""
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and _dotted(node.func) == name:
                yield path, node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _kw(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_source_has_no_unsafe_torch_load():
    for path, node in calls("torch.load"):
        v = _kw(node, "weights_only")
        assert isinstance(v, ast.Constant) and v.value is True, f"{path}:{node.lineno} torch.load without weights_only"


def test_source_has_no_pickle_or_unsafe_yaml():
    for name in ("pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "dill.load",
                 "joblib.load", "numpy.load", "np.load"):
        found = [f"{p}:{n.lineno}" for p, n in calls(name)
                 if not (name.endswith("np.load") or name == "numpy.load") or not _allow_pickle_false(n)]
        assert not found, f"{name} in {found}"
    for path in SRC.rglob("*.py"):  # nor a pickle module under another name (its exception types are fine)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & PICKLERS, f"{path}:{node.lineno}"
            if isinstance(node, ast.ImportFrom) and node.module in PICKLERS:
                assert all(a.name.endswith("Error") for a in node.names), f"{path}:{node.lineno}"


def _allow_pickle_false(node: ast.Call) -> bool:
    v = _kw(node, "allow_pickle")
    return v is None or (isinstance(v, ast.Constant) and v.value is False)


def test_remote_code_is_never_trusted_in_source():
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                v = _kw(node, "trust_remote_code")
                ok = v is None or (isinstance(v, ast.Constant) and v.value is False)
                assert ok, f"{path}:{node.lineno} passes trust_remote_code={ast.unparse(v)}"


def test_load_pretrained_passes_trust_remote_code_false():
    from attnlab.models import load_pretrained, resolve_model

    seen = {}

    def loader(path, **kw):
        seen.update(kw)
        return "loaded"

    assert load_pretrained(loader, resolve_model("minilm-l6"), num_labels=2) == "loaded"
    assert seen["trust_remote_code"] is False and seen["num_labels"] == 2


class _Boom:
    """Unpickling this creates ``marker``: a stand-in for arbitrary code in a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant_pickle(folder: Path, name: str, marker: Path) -> None:
    """Replace the safetensors weights in ``folder`` with a pickle that runs code when loaded."""
    for f in folder.glob("*.safetensors"):
        f.unlink()
    with open(folder / name, "wb") as f:
        pickle.dump({"weight": _Boom(marker)}, f)


@pytest.mark.parametrize("method,name", [("full", "pytorch_model.bin"), ("lora", "adapter_model.bin")])
def test_run_with_pickle_weights_is_refused_and_never_unpickled(tiny_bert_runs, tmp_path, capsys, method, name):
    run = tmp_path / "run"
    shutil.copytree(tiny_bert_runs[method], run)
    marker = tmp_path / "pwned"
    _plant_pickle(run / "model", name, marker)
    from attnlab.inference import Predictor

    with pytest.raises(UserError, match="safetensors only"):
        Predictor.from_run(run)
    assert main(["predict", str(run), "a fine film"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the run's weights are pickle files") and name in err[0]
    assert main(["merge", str(run), str(tmp_path / "merged")]) == 2
    assert not marker.exists() and not (tmp_path / "merged").exists()


def test_base_model_folder_with_malicious_pickle_never_runs_it(tiny_bert, tmp_path, capsys, sst2_dir):
    """A local model folder (``--model DIR``) holding only a pickle: transformers 5 loads ``.bin``
    files with ``torch.load(weights_only=True)``, which refuses to call anything; attnlab reports a
    one-line error and the planted code never runs."""
    folder = tmp_path / "evil-model"
    shutil.copytree(tiny_bert, folder)
    marker = tmp_path / "pwned"
    _plant_pickle(folder, "pytorch_model.bin", marker)
    code = main(["train", "-o", str(tmp_path / "out"), "--data", "sst2", "--data-dir", str(sst2_dir), "--model",
                 str(folder), "--max-train-samples", "8", "--max-eval-samples", "4", "--max-steps", "1",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: could not load"), err
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # what protects us: torch's weights-only unpickler
        torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert not marker.exists()
