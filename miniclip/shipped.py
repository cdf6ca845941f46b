"""The small trained CLIP that ships with the course, ready in a second, offline.

Chapters 00, 10, 11 and 12 use it. It is the `tiny` preset trained on the `shapes`
data with a vocabulary learnt from the captions (at most 1,000 tokens; their few words
need about 630), so the whole model is a few megabytes;
`scripts/train_shipped_checkpoint.sh` is the command that made it.
"""

from __future__ import annotations

from pathlib import Path

from miniclip.evaluate import checkpoint_tokenizer
from miniclip.image import ImageProcessor
from miniclip.model import CLIP
from miniclip.tokenizer import Tokenizer

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "checkpoints" / "shapes-tiny"


def load_shipped(folder: str | Path = SHIPPED) -> tuple[CLIP, Tokenizer, ImageProcessor]:
    """The shipped model (in eval mode), its tokenizer and its image processor."""
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(
            f"the shipped checkpoint is missing from {folder}; it comes with a clone of the "
            "repository (or rebuild it with scripts/train_shipped_checkpoint.sh)"
        )
    model = CLIP.from_pretrained(folder)
    tokenizer = checkpoint_tokenizer(folder, model.config.text.vocab_size)
    return model, tokenizer, ImageProcessor(model.config.vision.image_size)
