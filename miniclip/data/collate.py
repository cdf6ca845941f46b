"""Batching: a list of (image, captions) items becomes the tensors a CLIP model reads.

Chapter 08 ("Caption data") builds it. Each item contributes one image and one of its
captions; the images go through the image processor, the captions through the tokenizer,
padded to one length:

    pixel_values    (B, 3, S, S) float32
    input_ids       (B, L)       long
    attention_mask  (B, L)       long, 1 on tokens and 0 on padding

With caption="random" the caption is drawn from a generator keyed by (seed, epoch,
DataLoader worker), so the same seed, epoch and batch order give the same batches: call
`set_epoch(epoch)` before each epoch (before the DataLoader starts its workers) to see
other captions of the same images.
"""

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from miniclip.data.seeding import worker_rng

CAPTION_CHOICES = ("random", "first")


class Collate:
    """`collate_fn` for a `torch.utils.data.DataLoader` over any miniclip dataset."""

    def __init__(
        self,
        tokenizer: Callable[..., dict[str, torch.Tensor]],
        image_processor: Callable[[list[Image.Image]], dict[str, torch.Tensor]],
        context_length: int = 77,
        caption: str = "random",
        seed: int = 0,
        padding: str = "max_length",
    ):
        if caption not in CAPTION_CHOICES:
            raise ValueError(f"caption is one of {CAPTION_CHOICES}, not {caption!r}")
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.context_length = context_length
        self.padding = padding  # "max_length" pads to context_length, "longest" to the batch
        self.caption = caption
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Restart the caption draws (and an augmenting image processor's crops) for `epoch`."""
        self.epoch = epoch
        self._rng: np.random.Generator | None = None  # made on first use, in the worker
        if hasattr(self.image_processor, "set_epoch"):
            self.image_processor.set_epoch(epoch)

    def choose(self, captions: list[str]) -> str:
        if not captions:
            raise ValueError("an item has no caption")
        if self.caption == "first":
            return captions[0]
        if self._rng is None:
            self._rng = worker_rng(self.seed, self.epoch)
        return captions[int(self._rng.integers(len(captions)))]

    def __call__(self, items: list[tuple[Image.Image, list[str]]]) -> dict[str, torch.Tensor]:
        images = [image for image, _ in items]
        texts = [self.choose(captions) for _, captions in items]
        pixels = self.image_processor(images)["pixel_values"]
        tokens = self.tokenizer(
            texts, context_length=self.context_length, padding=self.padding, truncation=True
        )
        return {
            "pixel_values": torch.as_tensor(pixels, dtype=torch.float32),  # (B, 3, S, S)
            "input_ids": torch.as_tensor(tokens["input_ids"], dtype=torch.long),  # (B, L)
            "attention_mask": torch.as_tensor(tokens["attention_mask"], dtype=torch.long),  # (B, L)
        }
