"""Export a run to a folder that transformers loads as CLIPModel, CLIPTokenizer and CLIPImageProcessor.

Chapter 11 uses it: after `export_run(run, folder)`,
`transformers.pipeline("zero-shot-image-classification", model=folder)` works offline.
"""

from __future__ import annotations

from pathlib import Path

from miniclip.evaluate import load_run
from miniclip.image import ImageProcessor


def export_run(run_dir: str | Path, directory: str | Path) -> Path:
    model, tokenizer, _ = load_run(run_dir)
    if model.config.vision.kind != "vit":
        raise ValueError(f"{run_dir}: its image tower is a {model.config.vision.kind}, and transformers' "
                         "CLIPModel has only a Vision Transformer; nothing was exported (the run's "
                         "checkpoints load with miniclip's CLIP.from_pretrained)")
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.context_length = model.config.text.max_position_embeddings
    tokenizer.save_pretrained(directory)
    ImageProcessor(model.config.vision.image_size).save_pretrained(directory)
    return directory
