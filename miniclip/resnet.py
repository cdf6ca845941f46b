"""The paper's other image encoder: a ResNet, modified in three places.

Chapter 05 builds this file in its extension section, to compare with the Vision
Transformer. It follows section 2.4 of the CLIP paper (Radford et al., 2021), which
starts from ResNet-50 (He et al., 2016) and changes three things:

- the stem is three 3x3 convolutions and an average pool, not one 7x7 convolution and a
  max pool (the ResNet-C/D changes of He et al., 2019);
- anti-aliasing (Zhang, 2019): past the stem's first convolution, no convolution skips
  pixels; a block that halves the resolution averages 2x2 windows instead, on its main
  path after the 3x3 convolution and on its shortcut before the 1x1 one;
- attention pooling instead of global average pooling: one layer of multi-head attention
  in which the mean of the feature map, the average pool's answer, is the only query, and
  every position (and the mean) is a key, with position embeddings added.

Parameter names equal those of OpenAI's `ModifiedResNet` (clip/model.py, copied as
open_clip/modified_resnet.py), so the mapping is the identity below the prefix: their
`visual.<name>` is our `vision_model.<name>`, e.g. `visual.layer1.0.downsample.0.weight`
and `visual.attnpool.c_proj.weight` keep their names. OpenAI's ResNet models have no
separate visual projection: the attention pool's output projection `c_proj` maps into the
joint space, so `CLIP.visual_projection` is the identity for this tower.

The tower returns an `EncoderOutput` like the ViT's, but its states are feature maps,
(B, C, H, W): the stem's and each stage's output; its one attention map is the pool's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from miniclip.attention import attention_weights, fused_attention, split_heads
from miniclip.config import ResNetConfig
from miniclip.transformer import EncoderOutput
from miniclip.vision import check_pixel_values

EXPANSION = 4  # a bottleneck block outputs 4 times the channels of its 3x3 convolution


class Bottleneck(nn.Module):
    """1x1 conv narrows, 3x3 conv mixes, (average pool,) 1x1 conv widens; plus the shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        # every convolution has stride 1; a downsampling block averages stride x stride windows
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride > 1 or in_channels != out_channels:
            # the shortcut takes the new shape too: the same pool, then a 1x1 convolution
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, channels, H, W)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))  # (B, 4 channels, H / stride, W / stride)
        shortcut = x if self.downsample is None else self.downsample(self.avgpool(x))
        return F.relu(out + shortcut)


def stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
    """`blocks` bottlenecks; the first one changes the width (and the resolution if stride > 1)."""
    first = Bottleneck(in_channels, channels, stride)
    rest = (Bottleneck(channels * EXPANSION, channels) for _ in range(blocks - 1))
    return nn.Sequential(first, *rest)


class AttentionPool2d(nn.Module):
    """A feature map to one vector: its mean asks, every position (and the mean) answers."""

    def __init__(self, grid_size: int, width: int, num_heads: int, output_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.positional_embedding = nn.Parameter(torch.empty(grid_size**2 + 1, width))
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, output_dim)  # the output projection, into the joint space
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """OpenAI's initialisation (clip/model.py): normal with std width^-1/2; biases zero,
        as everywhere in miniclip."""
        std = self.c_proj.in_features**-0.5
        nn.init.normal_(self.positional_embedding, std=std)
        for projection in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            nn.init.normal_(projection.weight, std=std)
            nn.init.zeros_(projection.bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return split_heads(x, self.num_heads)  # (B, nh, T, d)

    def forward(
        self, x: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) -> (pooled (B, output_dim), weights (B, nh, 1, H*W + 1) or None)."""
        x = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)  # (B, H*W + 1, C), the mean first
        x = x + self.positional_embedding.to(x.dtype)
        query = self.split_heads(self.q_proj(x[:, :1]))  # (B, nh, 1, d): only the mean asks
        key = self.split_heads(self.k_proj(x))  # (B, nh, H*W + 1, d)
        value = self.split_heads(self.v_proj(x))
        if output_attentions:
            weights = attention_weights(query, key)  # (B, nh, 1, H*W + 1)
            context = weights @ value
        else:
            weights = None
            context = fused_attention(query, key, value)  # (B, nh, 1, d)
        pooled = context.transpose(1, 2).flatten(1)  # (B, C), the heads side by side
        return self.c_proj(pooled), weights


class ModifiedResNet(nn.Module):
    """The stem, four stages of bottleneck blocks, and the attention pool."""

    def __init__(self, config: ResNetConfig, output_dim: int):
        super().__init__()
        self.config = config
        width = config.width
        # the stem: three 3x3 convolutions, the first with stride 2, then a 2x2 average pool
        self.conv1 = nn.Conv2d(config.num_channels, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        # each stage after the first halves the resolution and doubles the width
        layers = config.layers
        self.layer1 = stage(width, width, layers[0], stride=1)
        self.layer2 = stage(width * 4, width * 2, layers[1], stride=2)
        self.layer3 = stage(width * 8, width * 4, layers[2], stride=2)
        self.layer4 = stage(width * 16, width * 8, layers[3], stride=2)
        grid_size = config.image_size // 32
        self.attnpool = AttentionPool2d(
            grid_size, config.feature_size, config.num_attention_heads, output_dim
        )  # which draws its own weights
        self.zero_block_gains()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """OpenAI's initialisation (clip/model.py) of the attention pool and of the blocks.
        Convolutions and BatchNorms keep PyTorch's defaults."""
        self.attnpool.reset_parameters()
        self.zero_block_gains()

    @torch.no_grad()
    def zero_block_gains(self) -> None:
        # A zero gain on each block's last BatchNorm makes every block start as its
        # shortcut, so the deep network starts shallow (Goyal et al., 2017).
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                nn.init.zeros_(block.bn3.weight)

    def check_input(self, pixel_values: torch.Tensor) -> None:
        check_pixel_values(pixel_values, self.config.image_size, self.config.num_channels)

    def stem(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(pixel_values)))  # (B, width / 2, H / 2, W / 2)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))  # (B, width, H / 2, W / 2)
        return self.avgpool(x)  # (B, width, H / 4, W / 4)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """(B, 3, H, W) pixels -> pooled (B, output_dim) and the last feature map (B, C, H/32, W/32).

        `hidden_states` are the stem's and the four stages' outputs; `attentions` holds the
        pool's weights over the mean and the H/32 x W/32 positions.
        """
        self.check_input(pixel_values)
        x = self.stem(pixel_values.to(self.conv1.weight.dtype))  # (B, width, H / 4, W / 4)
        hidden_states = [x]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)  # (B, 4 width, H / 4, W / 4) ... (B, 32 width, H / 32, W / 32)
            hidden_states.append(x)
        pooled, weights = self.attnpool(x, output_attentions)  # (B, output_dim)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=hidden_states if output_hidden_states else None,
            attentions=[weights] if output_attentions else None,
        )
