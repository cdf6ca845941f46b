"""The image encoder: a Vision Transformer (ViT).

Chapter 05 builds this file, following Dosovitskiy et al. (2021) as section 2.4 of the
CLIP paper adapts it: the image is cut into square patches, each patch becomes a vector
(one strided convolution does the cutting and the projection at once), a learned class
token is put in front, position embeddings are added, and the sequence goes through an
extra LayerNorm before the Transformer (CLIP's one change to the ViT). The class
token's final state, normalised once more, is the image's feature.
"""

from __future__ import annotations

import torch
from torch import nn

from miniclip.config import VisionConfig
from miniclip.transformer import Encoder, EncoderOutput


def check_pixel_values(pixel_values: torch.Tensor, size: int, channels: int) -> None:
    """Raise a ValueError that says what was expected unless pixels are (B, channels, size, size) floats."""
    expected = f"(batch, {channels}, {size}, {size})"
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (channels, size, size):
        raise ValueError(
            f"pixel_values must have shape {expected}, got {tuple(pixel_values.shape)}; "
            f"resize images with miniclip.ImageProcessor(size={size})"
        )
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"pixel_values must be floating point (normalised pixels), got {pixel_values.dtype}; "
            "raw 0-255 integers go through miniclip.ImageProcessor first"
        )


class VisionEmbeddings(nn.Module):
    """Patches by a strided convolution, a class token in front, a position vector added to each."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        width, patch = config.hidden_size, config.patch_size
        self.num_patches = (config.image_size // patch) ** 2
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.patch_embedding = nn.Conv2d(
            config.num_channels, width, kernel_size=patch, stride=patch, bias=False
        )
        self.position_embedding = nn.Embedding(self.num_patches + 1, width)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.patch_embedding.weight
        patches = self.patch_embedding(pixel_values.to(weight.dtype))  # (B, C, grid, grid)
        patches = patches.flatten(2).transpose(1, 2)  # (B, grid**2, C)
        class_token = self.class_embedding.to(patches.dtype).expand(patches.size(0), 1, -1)
        x = torch.cat([class_token, patches], dim=1)  # (B, grid**2 + 1, C)
        return x + self.position_embedding.weight.to(x.dtype)


class VisionTransformer(nn.Module):
    """Embeddings, pre-LayerNorm, encoder, and the post-LayerNorm of the class token."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        self.config = config
        self.embeddings = VisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # sic, as in HF
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def check_input(self, pixel_values: torch.Tensor) -> None:
        check_pixel_values(pixel_values, self.config.image_size, self.config.num_channels)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        self.check_input(pixel_values)
        x = self.pre_layrnorm(self.embeddings(pixel_values))  # (B, grid**2 + 1, C)
        x, hidden_states, attentions = self.encoder(
            x, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        pooled = self.post_layernorm(x[:, 0])  # the class token, (B, C)
        return EncoderOutput(x, pooled, hidden_states, attentions)
