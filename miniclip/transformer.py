"""The pre-LayerNorm Transformer encoder that both CLIP towers share.

Chapter 03 builds this file. A layer is the one in "Attention Is All You Need" with the
LayerNorm moved in front of each sub-layer (pre-LN, as in GPT-2 and CLIP), so the
residual stream is a plain sum: x + attention(norm(x)), then x + mlp(norm(x)).
The MLP uses QuickGELU, x * sigmoid(1.702 x), the fast GELU approximation that OpenAI
trained CLIP with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from miniclip.attention import Attention


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): a sigmoid approximation of GELU (Hendrycks and Gimpel, 2016)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Widen, apply the non-linearity, narrow back: C -> intermediate_size -> C."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str = "quick_gelu"):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation_fn = activation(hidden_act)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))


class EncoderLayer(nn.Module):
    """One pre-LN block: x + attention(layer_norm1(x)), then x + mlp(layer_norm2(x))."""

    def __init__(self, config):
        super().__init__()
        width = config.hidden_size
        self.self_attn = Attention(width, config.num_attention_heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.mlp = MLP(width, config.intermediate_size, config.hidden_act)
        self.layer_norm2 = nn.LayerNorm(width, eps=config.layer_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.self_attn(self.layer_norm1(x), mask, causal, output_attentions)
        x = x + attended
        x = x + self.mlp(self.layer_norm2(x))
        return x, weights


@dataclass
class EncoderOutput:
    """What a tower returns: per-token states, the pooled vector, and optional extras."""

    last_hidden_state: torch.Tensor  # (B, T, C)
    pooler_output: torch.Tensor  # (B, C)
    hidden_states: list[torch.Tensor] | None = None
    attentions: list[torch.Tensor] | None = None


class Encoder(nn.Module):
    """A stack of `num_hidden_layers` encoder layers.

    Returns the last hidden state, and on request every layer's input and output
    (`hidden_states`, num_hidden_layers + 1 tensors, as Hugging Face counts them) and
    every layer's attention weights.
    """

    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None, list[torch.Tensor] | None]:
        hidden_states = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for layer in self.layers:
            x, weights = layer(x, mask, causal, output_attentions)
            if output_hidden_states:
                hidden_states.append(x)
            if output_attentions:
                attentions.append(weights)
        return x, hidden_states, attentions
