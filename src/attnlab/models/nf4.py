"""4-bit NF4 bases through bitsandbytes: how a QLoRA base is quantized, rebuilt and dequantized.

The base model's linear layers are loaded through bitsandbytes as 4-bit **NF4** ("normal float":
16 levels placed at the quantiles of a normal distribution, which is what pretrained weights look
like), in blocks of 64 weights that each keep one absmax scale; **double quantization** stores those
scales themselves in 8 bits (blocks of 256, one fp32 scale each), cutting their cost from 0.5 to
about 0.13 bits per weight. In the forward pass each 4-bit weight is dequantized to the compute
dtype (bf16 where the hardware does it natively, else fp32) just in time for its matmul.

Two choices beyond the paper, both for small encoders on CPUs:

* The **input token embedding** is quantized to NF4 as well (bitsandbytes' ``EmbeddingNF4``,
  without double quantization: its forward gathers the rows' scales). In minilm-l6 the embedding
  table is half of all weights, so leaving it in fp32 would leave the base at ~0.6x its fp32 size.
* bitsandbytes' fused AVX512-BF16 CPU inference path (which repacks weights the first time a layer
  runs in eval mode, and may log that the optional ``kernels`` package is missing) is switched off:
  it computes in bf16 whatever the compute dtype, and its repacked weights have no backward, so
  training after an evaluation would break. Every CPU matmul dequantizes to the compute dtype.

The task head (:mod:`attnlab.models.heads`) is never quantized. Training (the ``qlora`` method,
``attnlab.training.methods.qlora``) and loading a run (``attnlab.inference``) both come here, so a
run's base is re-quantized on load exactly as in training (:func:`load_base`).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from attnlab import runtime
from attnlab.errors import UserError
from attnlab.models.heads import HEAD_PREFIXES
from attnlab.models.registry import load_pretrained

QUANT_TYPE = "nf4"
SKIP_MODULES = list(HEAD_PREFIXES)  # the classification head stays in full precision and trains


def _bnb():
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise UserError("QLoRA needs bitsandbytes, which is not installed", where="--method qlora",
                        fix='pip install "attnlab[qlora]" (or: pip install bitsandbytes)') from None
    return bnb


def compute_dtype(precision: str = "auto") -> torch.dtype:
    """bf16 where ``runtime.resolve_precision`` picks it (native bf16 hardware), else fp32."""
    return torch.bfloat16 if runtime.resolve_precision(precision) == "bf16" else torch.float32


def quantization_config(dtype: torch.dtype = torch.float32):
    """The bitsandbytes settings for the frozen base: 4-bit NF4, double quantization."""
    _bnb()
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=QUANT_TYPE, bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype, llm_int8_skip_modules=SKIP_MODULES)


def describe(dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """What :func:`load_base` must redo to rebuild the base; written to ``config.yaml``."""
    return {"method": "bitsandbytes", "quant_type": QUANT_TYPE, "double_quant": True, "blocksize": 64,
            "embeddings": QUANT_TYPE, "compute_dtype": str(dtype).removeprefix("torch."),
            "skip_modules": SKIP_MODULES}


@functools.cache
def _embedding_class():
    bnb = _bnb()

    class _FrozenEmbeddingNF4(bnb.nn.EmbeddingNF4):
        """bitsandbytes' NF4 embedding, frozen. It is left out of ``state_dict``: bitsandbytes cannot
        serialise it, and an adapter never stores base weights (they are rebuilt on load)."""

        def _save_to_state_dict(self, destination, prefix, keep_vars):
            return

    return _FrozenEmbeddingNF4


def quantize_embeddings(model: nn.Module) -> nn.Module:
    """Replace the input token embedding with a frozen NF4 copy, on the same device."""
    bnb = _bnb()
    emb = model.get_input_embeddings()
    if not isinstance(emb, nn.Embedding) or isinstance(emb, bnb.nn.Embedding4bit):
        return model
    cls = _embedding_class()
    q = cls(emb.num_embeddings, emb.embedding_dim, dtype=emb.weight.dtype, device="meta")
    weight = bnb.nn.Params4bit(emb.weight.data, requires_grad=False, compress_statistics=False,
                               quant_type=QUANT_TYPE, module=q)
    q.weight = weight.to(emb.weight.device)  # quantizes
    model.set_input_embeddings(q)
    return model


def _cpu_fused_path_off(model: nn.Module) -> None:
    bnb = _bnb()
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False


def finish_base(model: nn.Module) -> nn.Module:
    """What follows a 4-bit ``from_pretrained``, in training and on load alike: the input embedding
    quantized to NF4 and the fused CPU path switched off (see the module notes)."""
    quantize_embeddings(model)
    _cpu_fused_path_off(model)
    return model


def is_quantized(model: nn.Module) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False))


def dequantize(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Turn a 4-bit base back into plain ``nn.Linear``/``nn.Embedding`` layers holding the
    dequantized weights: the exact values the adapters were trained against, now in ``dtype``."""
    bnb = _bnb()
    emb = model.get_input_embeddings()
    if isinstance(emb, bnb.nn.Embedding4bit):
        w = bnb.functional.dequantize_4bit(emb.weight.data, emb.weight.quant_state).to(dtype)
        plain = nn.Embedding(emb.num_embeddings, emb.embedding_dim, device="meta")
        plain.weight = nn.Parameter(w.reshape(emb.num_embeddings, emb.embedding_dim), requires_grad=False)
        model.set_input_embeddings(plain)
    if is_quantized(model):
        model = model.dequantize(dtype=dtype)
    return model


def load_base(loader, resolved, *, merge: bool = False, **kwargs: Any) -> nn.Module:
    """Rebuild a QLoRA run's base as training saw it: ``loader`` (a ``from_pretrained``) with the
    same 4-bit settings, embeddings quantized. ``merge``: then dequantize it to fp32, ready for
    ``merge_and_unload`` (the merged model is a plain fp32 model)."""
    kwargs = dict(kwargs)
    kwargs.pop("dtype", None)
    dtype = compute_dtype("auto")
    kw: dict[str, Any] = {"quantization_config": quantization_config(dtype), "dtype": torch.float32}
    if torch.cuda.is_available():
        kw["device_map"] = {"": 0}
    model = load_pretrained(loader, resolved, **kw, **kwargs)
    finish_base(model)
    return dequantize(model) if merge else model


__all__ = ["QUANT_TYPE", "SKIP_MODULES", "compute_dtype", "dequantize", "describe", "finish_base", "is_quantized",
           "load_base", "quantization_config", "quantize_embeddings"]
