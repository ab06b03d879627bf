"""LoRA (Hu et al., 2021) through PEFT: W x + (alpha / r) * B A x, with A (r x d_in) and B (d_out x r)
trained and W frozen. By default every linear layer of the encoder (attention and MLP) gets an
adapter; the classification head trains in full.

PEFT is imported when an adapter is built, not with this module: ``import peft`` takes seconds
(it imports bitsandbytes too, where installed), and the method registry is imported by every
command, including those that never touch an adapter."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from attnlab.errors import UserError
from attnlab.training.methods.base import CLASSIFIER_TASKS, Method, is_head_param

if TYPE_CHECKING:
    from peft import LoraConfig
    from torch import nn


def lora_config(cfg, task_type: str = "SEQ_CLS") -> LoraConfig:
    from peft import LoraConfig

    targets = cfg.lora_targets or "all-linear"
    return LoraConfig(
        task_type=task_type,
        r=cfg.lora_r,
        lora_alpha=cfg.resolved_lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
    )


def encoder_linears(model: nn.Module) -> list[str]:
    """"all-linear" for a classifier: every linear layer outside the classification head, by full name.
    PEFT's shorthand leaves out only a head module named ``classifier`` or ``score``, so DistilBERT's
    ``pre_classifier`` and RoBERTa's ``classifier.dense``/``out_proj`` would get adapters inside the
    head that trains in full (DistilBERT: an error, as ``pre_classifier`` ends in ``classifier``)."""
    from torch import nn

    from attnlab.models.pooling import bypassed_prefixes, is_bypassed

    unused = bypassed_prefixes(model)  # BERT's pooler when the model pools by mean: it feeds nothing
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not is_head_param(f"{n}.weight")
            and not is_bypassed(n, unused)]


# the numbered block a module sits in: BERT/MPNet "encoder.layer.3.", Llama "layers.3.", GPT-2 "h.3.", T5 "block.3."
LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")


def in_top_layers(names: list[str], k: int) -> list[str]:
    """The module names among ``names`` that sit in the top ``k`` numbered layers (modules outside
    the numbered layers are left out; a one-line
    UserError where the model has fewer layers, or its layers are not numbered in a known way)."""
    index = {n: int(m.group(1)) for n in names if (m := LAYER_INDEX.search(f".{n}."))}
    if not index:
        raise UserError("--lora-top-layers needs numbered layers (encoder.layer.N, layers.N, h.N or block.N), "
                        "and this model's adapted modules have none", where="--lora-top-layers",
                        fix="leave --lora-top-layers out (adapters in every layer)")
    depth = max(index.values()) + 1
    if k > depth:
        raise UserError(f"--lora-top-layers {k} is more than the model's {depth} layers", where="--lora-top-layers",
                        fix=f"pass at most {depth}, or leave it out for every layer")
    return [n for n in names if index.get(n, -1) >= depth - k]


def adapted_modules(model: nn.Module, cfg) -> list[str]:
    """The full names of the classifier's modules that get adapters: ``cfg.lora_targets`` (or every
    encoder linear), cut to the top ``cfg.lora_top_layers`` layers when that is set."""
    targets = cfg.lora_targets or "all-linear"
    if targets == "all-linear":
        names = encoder_linears(model)
    else:
        names = [n for n, _ in model.named_modules() if any(n == t or n.endswith(f".{t}") for t in targets)]
    return in_top_layers(names, cfg.lora_top_layers) if getattr(cfg, "lora_top_layers", None) else names


def prepare(model: nn.Module, cfg, *, fused: bool = True) -> nn.Module:
    """``model`` with LoRA adapters per ``cfg``; ``fused`` builds plain linears' adapters as
    :class:`~attnlab.training.methods.fused_lora.FusedLoraLinear` (the same values, fewer ops),
    ``False`` keeps PEFT's own layer (what ``benchmarks/lora_step.py`` compares against)."""
    # the task picks PEFT's task type: for text2text (a seq2seq model writes the label) "all-linear"
    # means every attention and feed-forward linear of encoder and decoder (T5: q, k, v, o, wi/wo or
    # wi_0/wi_1/wo), not lm_head; for a classifier every linear outside the head (encoder_linears)
    from peft import get_peft_model

    from attnlab.training.tasks import get_task

    task_type = get_task(getattr(cfg, "task", "classification")).peft_task_type
    config = lora_config(cfg, task_type)
    if task_type == "SEQ_CLS" and (config.target_modules == "all-linear" or getattr(cfg, "lora_top_layers", None)):
        config.target_modules = adapted_modules(model, cfg)
    elif getattr(cfg, "lora_top_layers", None):
        raise UserError("--lora-top-layers works for classifiers, not --task text2text", where="--lora-top-layers",
                        fix="leave --lora-top-layers out")
    if fused:
        from attnlab.training.methods import fused_lora

        fused_lora.register(config, model)
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise UserError(f"LoRA could not be applied: {str(exc).splitlines()[0]}", where="--lora-targets",
                        fix="name linear layers of this model, e.g. query,value") from None


# frozen base: DDP need not search the graph for parameters without gradients
METHOD = Method("lora", "low-rank adapters on every attention and MLP linear layer (PEFT)", 5e-4, prepare,
                is_adapter=True, lora_settings=True, tasks=(*CLASSIFIER_TASKS, "text2text"),
                find_unused_parameters=False)
