"""Checks of the contrastive loss (chapter 07)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from miniclip import loss as loss_module
from miniclip.checks.core import (
    compare,
    exercise,
    randn,
)


@exercise("clip_loss", loss_module.clip_loss)
def check_clip_loss(clip_loss: Callable) -> str:
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss

    logits = randn(5, 5, seed=16) * 3
    targets = torch.arange(5)
    rows, columns = F.cross_entropy(logits, targets), F.cross_entropy(logits.t(), targets)
    mistakes = [
        (rows,
         ("that is only the text-to-image direction (rows); average it with the "
          "image-to-text one, the cross-entropy of the columns (logits.t()).")),
        (columns,
         ("that is only the image-to-text direction (columns); average it with the "
          "cross-entropy of the rows.")),
        (rows + columns, "the sum of the two directions; CLIP takes their mean, (a + b) / 2."),
        (F.cross_entropy(logits, targets, reduction="sum") / 2
         + F.cross_entropy(logits.t(), targets, reduction="sum") / 2,
         "summed over the batch; average over it (cross_entropy's default reduction)."),
    ]
    what = "clip_loss(logits_per_text) for a 5 x 5 matrix"
    got = clip_loss(logits)
    compare(what, got, loss_module.clip_loss(logits), mistakes, atol=1e-6)
    compare(f"{what}, against transformers' image_text_contrastive_loss", got,
            image_text_contrastive_loss(logits), atol=1e-6)
    uniform = clip_loss(torch.zeros(8, 8))
    compare("clip_loss(zeros(8, 8)) should be ln 8: a uniform guess among 8", uniform,
            torch.tensor(math.log(8)), atol=1e-6)
    return ("the mean of both cross-entropies, equal to transformers' contrastive loss; "
            "ln(N) at uniform logits")
