"""The shapes of a CLIP model, as plain dataclasses.

Chapter 06 meets this file when it puts the two encoders together. Field names are
Hugging Face's (`hidden_size`, `num_attention_heads`, ...), so converting to and from
`transformers.CLIPConfig` is a matter of copying fields, not of translating them.

The image tower is one of two kinds, as in the paper: a Vision Transformer
(`VisionConfig`, kind "vit") or the modified ResNet of section 2.4 (`ResNetConfig`, kind
"resnet", chapter 05's extension section). `to_dict` records the kind in the vision
entry; a dict without one (written before the ResNet existed) is a ViT.

Presets:
- `tiny`: trains on a laptop CPU in minutes (72-pixel images cut into 3 x 3 patches of
  24 pixels, one per cell of the shapes grid; two layers per tower).
- `tiny-resnet`: `tiny` with a ResNet image tower of about the same parameter count.
- `small`: for a small GPU.
- `vit-b-32`: the shapes of openai/clip-vit-base-patch32 (Radford et al., 2021, Table 19).
- `rn50`: the shapes of OpenAI's RN50 (Table 19); transformers has no model for it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# The OpenAI BPE vocabulary: 256 bytes, their 256 end-of-word forms, 48,894 merges and
# the two special tokens <|startoftext|> (49406) and <|endoftext|> (49407).
OPENAI_VOCAB_SIZE = 49408


@dataclass
class TextConfig:
    """The text tower: a causal Transformer over token ids, pooled at <|endoftext|>."""

    vocab_size: int = OPENAI_VOCAB_SIZE
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 49406
    eos_token_id: int = 49407


@dataclass
class VisionConfig:
    """The image tower: a Vision Transformer over square patches, pooled at a class token."""

    kind: ClassVar[str] = "vit"
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5


@dataclass
class ResNetConfig:
    """The other image tower: a ResNet-50-like network pooled by attention (miniclip.resnet).

    The defaults are RN50's. Field names are OpenAI's (`layers`, `width`) where transformers
    has no equivalent, and the ViT's (`image_size`, ...) where it has.
    """

    kind: ClassVar[str] = "resnet"
    layers: tuple[int, ...] = (3, 4, 6, 3)  # bottleneck blocks in each of the four stages
    width: int = 64  # channels after the stem; the last stage has 32 * width
    num_attention_heads: int = 32  # of the attention pool
    num_channels: int = 3
    image_size: int = 224

    def __post_init__(self):
        self.layers = tuple(self.layers)  # a list when read back from JSON
        if len(self.layers) != 4:
            raise ValueError(f"layers must give the blocks of 4 stages, got {self.layers}")
        if self.image_size % 32:
            raise ValueError(
                f"image_size must be a multiple of 32 (the ResNet shrinks images 32-fold), "
                f"got {self.image_size}"
            )
        if self.feature_size % self.num_attention_heads:
            raise ValueError(
                f"the attention pool's width 32 * width = {self.feature_size} is not divisible "
                f"by num_attention_heads {self.num_attention_heads}"
            )

    @property
    def feature_size(self) -> int:
        """Channels of the last stage's feature map, which the attention pool reads."""
        return 32 * self.width


VISION_CONFIGS = {"vit": VisionConfig, "resnet": ResNetConfig}


@dataclass
class CLIPConfig:
    """A whole CLIP: two towers, the width of the joint space and the initial temperature."""

    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig | ResNetConfig = field(default_factory=VisionConfig)
    projection_dim: int = 512
    # logit_scale is stored as a logarithm; exp(2.6592) = 1 / 0.07, the paper's initial value.
    logit_scale_init_value: float = math.log(1 / 0.07)

    @classmethod
    def preset(cls, name: str) -> CLIPConfig:
        """Return a fresh config for one of `PRESETS` ("tiny", "tiny-resnet", "rn50", ...)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[name]()

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["vision"] = {"kind": self.vision.kind, **values["vision"]}
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CLIPConfig:
        values = dict(values)
        text = TextConfig(**values.pop("text", {}))
        vision = dict(values.pop("vision", {}))
        kind = vision.pop("kind", "vit")
        if kind not in VISION_CONFIGS:
            raise ValueError(f"unknown image tower {kind!r}; choose one of {sorted(VISION_CONFIGS)}")
        return cls(text=text, vision=VISION_CONFIGS[kind](**vision), **values)

    # Hugging Face interop: the fields have the same names, so this is a copy.
    def to_hf(self):
        """The equivalent `transformers.CLIPConfig` (which exists only for a ViT image tower)."""
        if self.vision.kind != "vit":
            raise ValueError(
                f"transformers.CLIPModel has no {self.vision.kind!r} image tower, only a Vision "
                "Transformer; this model cannot become a Hugging Face one (CLIP.save_pretrained "
                "and CLIP.from_pretrained still store and load it, in miniclip's own format)"
            )
        from transformers import CLIPConfig as HFCLIPConfig

        return HFCLIPConfig(
            text_config=dataclasses.asdict(self.text),
            vision_config=dataclasses.asdict(self.vision),
            projection_dim=self.projection_dim,
            logit_scale_init_value=self.logit_scale_init_value,
        )

    @classmethod
    def from_hf(cls, hf_config) -> CLIPConfig:
        """Read a `transformers.CLIPConfig`, a path to its config.json, or its dict."""
        if isinstance(hf_config, (str, Path)):
            hf_config = json.loads(Path(hf_config).read_text())
        if not isinstance(hf_config, dict):
            hf_config = hf_config.to_dict()
        if "vision" in hf_config:
            raise ValueError(
                "this is miniclip's own config (written for a ResNet image tower), not a "
                "transformers one; read it with CLIP.from_pretrained or CLIPConfig.from_dict"
            )
        text = _pick(TextConfig, hf_config.get("text_config") or {})
        vision = _pick(VisionConfig, hf_config.get("vision_config") or {})
        return cls(
            text=text,
            vision=vision,
            projection_dim=hf_config.get("projection_dim", 512),
            logit_scale_init_value=hf_config.get("logit_scale_init_value", math.log(1 / 0.07)),
        )


def _pick(config_class, values: dict[str, Any]):
    """Build `config_class` from the entries of `values` that it has a field for."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return config_class(**{k: v for k, v in values.items() if k in names})


def _tiny() -> CLIPConfig:
    return CLIPConfig(
        text=TextConfig(
            hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=32,
        ),
        vision=VisionConfig(
            hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
            image_size=72, patch_size=24,  # one patch per cell of the shapes data's 3 x 3 grid
        ),
        projection_dim=128,
    )


def _tiny_resnet() -> CLIPConfig:
    # About the parameters of `tiny`'s image tower and projection (~0.6M each), far fewer
    # multiply-adds. Its images are 64 pixels (a multiple of 32), where the last stage is a 2 x 2 grid.
    config = _tiny()
    config.vision = ResNetConfig(layers=(2, 2, 2, 3), width=9, num_attention_heads=4, image_size=64)
    return config


def _small() -> CLIPConfig:
    return CLIPConfig(
        text=TextConfig(
            hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
        ),
        vision=VisionConfig(
            hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4,
            image_size=96, patch_size=8,
        ),
        projection_dim=256,
    )


def _vit_b_32() -> CLIPConfig:
    return CLIPConfig()


def _rn50() -> CLIPConfig:
    return CLIPConfig(vision=ResNetConfig(), projection_dim=1024)


PRESETS = {
    "tiny": _tiny, "tiny-resnet": _tiny_resnet, "small": _small, "vit-b-32": _vit_b_32,
    "rn50": _rn50,
}
