"""miniclip: a minimal CLIP, built piece by piece, equal to transformers.CLIPModel."""

from miniclip.config import CLIPConfig
from miniclip.loss import clip_loss
from miniclip.model import CLIP, CLIPOutput

__all__ = ["CLIP", "CLIPConfig", "CLIPOutput", "clip_loss"]
