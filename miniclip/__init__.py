"""miniclip: a minimal CLIP, built piece by piece, equal to transformers.CLIPModel."""

from miniclip.config import CLIPConfig
from miniclip.image import ImageProcessor
from miniclip.loss import clip_loss
from miniclip.model import CLIP, CLIPOutput
from miniclip.tokenizer import Tokenizer

__all__ = ["CLIP", "CLIPConfig", "CLIPOutput", "ImageProcessor", "Tokenizer", "clip_loss"]
