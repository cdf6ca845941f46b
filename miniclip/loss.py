"""The symmetric N-pair contrastive loss (InfoNCE) that CLIP is trained with.

Chapter 07 builds this file from the numpy pseudo-code of Figure 3 of the CLIP paper
(Radford et al., 2021). In a batch of N (image, text) pairs the N matching pairs sit on
the diagonal of the N x N logit matrix; each row is a classification problem "which of
the N images goes with this text?", each column the same for images, and the loss is
the mean of the two cross-entropies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """(cross_entropy(rows) + cross_entropy(columns)) / 2 of an (N, N) logit matrix.

    Row i of `logits_per_text` holds text i's scores against every image; the right
    image for text i is image i, so the targets are 0, 1, ..., N-1 both ways.
    """
    if logits_per_text.dim() != 2 or logits_per_text.size(0) != logits_per_text.size(1):
        raise ValueError(
            f"clip_loss needs a square (N, N) matrix of logits, got shape {tuple(logits_per_text.shape)}"
        )
    targets = torch.arange(logits_per_text.size(0), device=logits_per_text.device)
    text_loss = F.cross_entropy(logits_per_text, targets)  # each text picks its image
    image_loss = F.cross_entropy(logits_per_text.t(), targets)  # each image picks its text
    return (text_loss + image_loss) / 2
