"""Multi-head self-attention with causal and padding masks.

Chapter 02 builds this file. It follows "Attention Is All You Need" (Vaswani et al.,
2017, section 3.2) as CLIP uses it: the text tower attends causally (a token sees only
the tokens before it) and ignores padding; the image tower lets every patch see every
patch.

Masks here are boolean, True where attention is *allowed*, of shape (B, 1, T, T) or
anything that broadcasts to (B, H, T, T). Two paths compute the same function:
`attention_weights` + a matmul written out (used when the weights are asked for, to be
plotted) and PyTorch's fused `scaled_dot_product_attention` (used otherwise).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """(1, 1, T, T) mask that lets query i attend to keys 0..i."""
    allowed = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    return allowed[None, None]


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, T) mask from a tokenizer's (B, T) attention_mask: keys that are padding are hidden."""
    return attention_mask.bool()[:, None, None, :]


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Attention is allowed where every given mask allows it (None means "no mask")."""
    present = [mask for mask in masks if mask is not None]
    if not present:
        return None
    combined = present[0]
    for mask in present[1:]:
        combined = combined & mask
    return combined


def attention_weights(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) over the keys, with masked keys at exactly zero weight.

    query, key: (B, H, T, d). Returns (B, H, T, T). The softmax runs in float32 even
    under mixed precision. A query row whose keys are all masked gets all-zero weights
    (not NaN), so its output is zero, as in PyTorch's fused kernel.
    """
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))  # (B, H, T, T)
    scores = scores.float()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)  # rows with no allowed key: NaN -> 0
    return weights.to(query.dtype)


def fused_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """The same function as `attention_weights(...) @ value`, through PyTorch's fused kernel.

    A causal mask alone is passed as `is_causal`, which lets the kernel skip the hidden
    half of the scores (and use FlashAttention on a GPU) instead of reading a (T, T) mask.
    """
    if causal and mask is None:
        return F.scaled_dot_product_attention(query, key, value, is_causal=True)
    if causal:
        mask = combine_masks(causal_mask(query.size(-2), query.device), mask)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, C / H): head h gets channels h*d ... (h+1)*d - 1."""
    batch, length, width = x.shape
    head_dim = width // num_heads
    return x.reshape(batch, length, num_heads, head_dim).transpose(1, 2)  # (B, H, T, d)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B, T, H * d), the inverse of split_heads."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)  # (B, T, H*d)


class Attention(nn.Module):
    """Multi-head self-attention: project to queries, keys and values, attend per head, merge."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q_proj(x), k_proj(x), v_proj(x) in one matrix multiply: the weights stacked by rows."""
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        bias = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        return F.linear(x, weight, bias).chunk(3, dim=-1)  # 3 x (B, T, C)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return split_heads(x, self.num_heads)  # (B, H, T, d)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        return merge_heads(x)  # (B, T, H*d)

    def forward(
        self,
        hidden_states: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states (B, T, C) -> (output (B, T, C), weights (B, H, T, T) or None).

        `mask` is a boolean mask (True = may attend); `causal` adds the causal mask to it.
        """
        query, key, value = map(self.split_heads, self.project_qkv(hidden_states))  # (B, H, T, d)
        if output_attentions:
            if causal:
                mask = combine_masks(causal_mask(hidden_states.size(1), hidden_states.device), mask)
            weights = attention_weights(query, key, mask)
            context = weights @ value  # (B, H, T, d)
        else:
            weights = None
            context = fused_attention(query, key, value, mask, causal)
        return self.out_proj(self.merge_heads(context)), weights
