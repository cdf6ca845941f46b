"""The text encoder: token ids in, one vector per text out.

Chapter 04 builds this file, following section 2.4 of the CLIP paper (Radford et al.,
2021): a causal Transformer over byte-level BPE tokens, bracketed by <|startoftext|>
and <|endoftext|>; the final LayerNorm's output at the end-of-text token is the text's
feature. The attention is causal so that the model could have been initialised from a
language model; a consequence is that only the end-of-text token has seen every word.
"""

from __future__ import annotations

import torch
from torch import nn

from miniclip.attention import padding_mask
from miniclip.config import TextConfig
from miniclip.transformer import Encoder, EncoderOutput

# Checkpoints converted from OpenAI before transformers' fix of 2023 say eos_token_id=2.
# For them transformers pools at the largest token id instead, which is <|endoftext|>
# in the OpenAI vocabulary; we keep the same rule so those checkpoints give the same outputs.
LEGACY_EOS_TOKEN_ID = 2


def eos_positions(input_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """(B,) index of each row's first end-of-text token (or, for the legacy id 2, its largest id)."""
    if eos_token_id == LEGACY_EOS_TOKEN_ID:
        return input_ids.argmax(dim=-1)
    is_eos = input_ids == eos_token_id
    # (under torch.compile the check is skipped: reading a value would split the graph)
    if not torch.compiler.is_compiling() and not is_eos.any(dim=-1).all():
        rows = (~is_eos.any(dim=-1)).nonzero().flatten().tolist()
        raise ValueError(
            f"rows {rows} of input_ids have no end-of-text token (id {eos_token_id}); "
            "the text feature is read there, so every row needs one (the tokenizer adds it)"
        )
    return is_eos.int().argmax(dim=-1)  # argmax returns the first maximum


class TextEmbeddings(nn.Module):
    """A learned vector per token id plus a learned vector per position."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)  # (B, T, C)


class TextTransformer(nn.Module):
    """Embeddings, a causal encoder, a final LayerNorm, pooling at <|endoftext|>."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.config = config
        self.embeddings = TextEmbeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def check_input(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        if input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"input_ids must be a (batch, length) tensor of integer token ids, "
                f"got shape {tuple(input_ids.shape)} and dtype {input_ids.dtype}"
            )
        limit = self.config.max_position_embeddings
        if input_ids.size(1) > limit:
            raise ValueError(
                f"input_ids has {input_ids.size(1)} tokens per row, but the position table "
                f"holds {limit}; tokenize with context_length={limit} (truncation cuts longer texts)"
            )
        if not torch.compiler.is_compiling():  # under torch.compile, reading values would split the graph
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.config.vocab_size:
                raise ValueError(
                    f"token ids must lie in [0, {self.config.vocab_size}), got ids from {low} to {high}; "
                    "was the text tokenized with a different vocabulary?"
                )
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, "
                f"input_ids has shape {tuple(input_ids.shape)}; they must match"
            )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        self.check_input(input_ids, attention_mask)
        x = self.embeddings(input_ids)  # (B, T, C)
        mask = None
        # No padding: no mask, so that attention can take its causal fast path. Compiled, the
        # mask is always built (an all-True one changes nothing): testing would split the graph.
        if attention_mask is not None and (torch.compiler.is_compiling() or not bool(attention_mask.all())):
            mask = padding_mask(attention_mask)  # (B, 1, 1, T)
        x, hidden_states, attentions = self.encoder(
            x, mask, causal=True,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )
        x = self.final_layer_norm(x)
        rows = torch.arange(x.size(0), device=x.device)
        pooled = x[rows, eos_positions(input_ids, self.config.eos_token_id)]  # (B, C)
        return EncoderOutput(x, pooled, hidden_states, attentions)
