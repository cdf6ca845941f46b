"""The shapes of a CLIP model, as plain dataclasses.

Chapter 06 meets this file when it puts the two encoders together. Field names are
Hugging Face's (`hidden_size`, `num_attention_heads`, ...), so converting to and from
`transformers.CLIPConfig` is a matter of copying fields, not of translating them.

Presets:
- `tiny`: trains on a laptop CPU in minutes (64-pixel images, two layers per tower).
- `small`: for a small GPU.
- `vit-b-32`: the shapes of openai/clip-vit-base-patch32 (Radford et al., 2021, Table 19).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
class CLIPConfig:
    """A whole CLIP: two towers, the width of the joint space and the initial temperature."""

    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    projection_dim: int = 512
    # logit_scale is stored as a logarithm; exp(2.6592) = 1 / 0.07, the paper's initial value.
    logit_scale_init_value: float = math.log(1 / 0.07)

    @classmethod
    def preset(cls, name: str) -> CLIPConfig:
        """Return a fresh config for one of `PRESETS` ("tiny", "small", "vit-b-32")."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[name]()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CLIPConfig:
        values = dict(values)
        text = TextConfig(**values.pop("text", {}))
        vision = VisionConfig(**values.pop("vision", {}))
        return cls(text=text, vision=vision, **values)

    # Hugging Face interop: the fields have the same names, so this is a copy.
    def to_hf(self):
        """The equivalent `transformers.CLIPConfig`."""
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
            image_size=64, patch_size=8,
        ),
        projection_dim=128,
    )


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


PRESETS = {"tiny": _tiny, "small": _small, "vit-b-32": _vit_b_32}
