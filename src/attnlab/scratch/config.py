"""The settings of the from-scratch encoder, as a Hugging Face config (saved as ``config.json``)."""

from __future__ import annotations

from transformers import PretrainedConfig

MODEL_TYPE = "attnlab-scratch-encoder"


class ScratchEncoderConfig(PretrainedConfig):
    """A small Transformer encoder for sequence classification.

    Attributes:
        vocab_size: size of the token table (the minilm-l6 WordPiece vocabulary by default).
        hidden_size: model width C.
        num_hidden_layers: number of encoder blocks N.
        num_attention_heads: heads H per block (C must be divisible by H).
        intermediate_size: width of the feed-forward layer (4 C in the paper).
        max_position_embeddings: longest input, in tokens.
        position_encoding: "sinusoidal" (fixed table, Vaswani et al. 2017) or "learned" (BERT).
        norm: "pre" (LayerNorm before each sub-layer: trains more stably from random init) or "post"
            (after the residual sum, as in the original Transformer and BERT).
        pooling: "mean" (average over the real tokens) or "cls" (the first token).
        hidden_dropout_prob: dropout on embeddings, sub-layer outputs and the pooled vector.
        attention_probs_dropout_prob: dropout on the attention weights.
        layer_norm_eps: LayerNorm epsilon.
        initializer_range: std of the normal initialisation of linear and embedding weights.
    """

    model_type = MODEL_TYPE

    vocab_size: int = 30522
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 128
    position_encoding: str = "sinusoidal"
    norm: str = "pre"
    pooling: str = "mean"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0

    def __post_init__(self, **kwargs):
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        if self.position_encoding not in ("sinusoidal", "learned"):
            raise ValueError(f"position_encoding must be 'sinusoidal' or 'learned', got {self.position_encoding!r}")
        if self.position_encoding == "sinusoidal" and self.hidden_size % 2:
            raise ValueError(f"sinusoidal positions need an even hidden_size, got {self.hidden_size}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {self.norm!r}")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        super().__post_init__(**kwargs)
