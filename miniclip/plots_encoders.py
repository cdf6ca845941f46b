"""Figures of the two towers (chapters 04 and 05): what each token sees, patches, positions.

Like `miniclip.plots`, every function returns a matplotlib Figure that is already
closed, so that a notebook cell shows it once and a test can inspect it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from miniclip.plots import closed, draw_mask, label_axes


def text_visibility_figure(labels: Sequence[str], allowed: torch.Tensor, change: torch.Tensor,
                           eos: int, title: str) -> Figure:
    """What one layer lets each token see, next to what changes a tower's outputs.

    `allowed` (T, T): the combined causal and padding mask. `change` (T, T): how far output
    i moves when token j is replaced (measured). The row of <|endoftext|> (`eos`) is framed.
    """
    length = len(labels)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
    fig.suptitle(title)
    draw_mask(left, allowed, labels, "one layer: causal & padding mask")
    relative = change / change.amax(dim=1, keepdim=True).clamp_min(1e-12)  # each row's largest = 1
    image = right.imshow(relative.numpy(), cmap="Blues", vmin=0, vmax=1)
    label_axes(right, labels, length, "whole tower: change of output i when token j is replaced")
    right.set_xlabel("token j, replaced by another word")
    right.set_ylabel("output i of the tower")
    fig.colorbar(image, ax=right, shrink=0.8, label="change of output i (row's largest = 1)")
    for ax in (left, right):
        ax.add_patch(Rectangle((-0.5, eos - 0.5), length, 1, fill=False, edgecolor="#d62728",
                               linewidth=2.5))
    left.plot([], [], color="#d62728", linewidth=2.5, label="<eot>: sees every word")
    left.legend(loc="upper right", fontsize=8)
    return closed(fig, masks=True)


def patch_grid_figure(image: Image.Image, patch_size: int, title: str, shown: int = 12) -> Figure:
    """An image cut into its patch grid (numbered in reading order), and the token sequence."""
    pixels = np.asarray(image)
    size = pixels.shape[0]
    grid = size // patch_size
    fig = plt.figure(figsize=(10, 6.2), layout="constrained")
    fig.suptitle(title)
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.2, 1.4])
    ax = top.subplots()
    ax.imshow(pixels, extent=(0, size, size, 0))
    for line in range(0, size + 1, patch_size):
        ax.axhline(line, color="white", linewidth=0.8)
        ax.axvline(line, color="white", linewidth=0.8)
    for index in range(grid * grid):
        row, col = divmod(index, grid)
        ax.text((col + 0.5) * patch_size, (row + 0.5) * patch_size, str(index), ha="center",
                va="center", fontsize=7, color="white", alpha=0.9)
    ax.set(title=f"{grid} x {grid} = {grid * grid} patches of {patch_size} x {patch_size} pixels",
           xlabel="x (pixels)", ylabel="y (pixels)")
    shown = min(shown, grid * grid)
    more = shown < grid * grid  # a last "..." panel for the patches not drawn
    strip = bottom.subplots(1, shown + 1 + more)
    bottom.suptitle("the sequence the Transformer reads: class token, then patches in reading "
                    "order", fontsize=10)
    for position, axis in enumerate(strip):
        axis.set_xticks([])
        axis.set_yticks([])
        if position == 0:
            axis.text(0.5, 0.5, "[class]", ha="center", va="center", fontsize=9)
            axis.set_facecolor("#e8e8e8")
            axis.set_xlabel("0", fontsize=8)
        elif more and position == shown + 1:
            axis.text(0.5, 0.5, "...", ha="center", va="center", fontsize=12)
            axis.axis("off")
        else:
            row, col = divmod(position - 1, grid)
            patch = pixels[row * patch_size:(row + 1) * patch_size,
                           col * patch_size:(col + 1) * patch_size]
            axis.imshow(patch)
            axis.set_xlabel(str(position), fontsize=8)
    strip[0].set_ylabel("position", fontsize=8)
    plt.close(fig)
    return fig


def centred_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """(N, N) cosine similarity of N embeddings after subtracting their mean.

    Centring removes what all positions share (for sine-cosine tables, the many slow
    waves that are nearly constant over a small grid), so that what tells them apart shows.
    """
    embeddings = embeddings.detach().float()
    unit = torch.nn.functional.normalize(embeddings - embeddings.mean(dim=0), dim=-1)
    return unit @ unit.T


def similarity_mosaic(embeddings: torch.Tensor, grid: int) -> np.ndarray:
    """(grid * (grid + 1) - 1) square mosaic: tile (r, c) holds the centred cosine similarity
    of patch (r, c)'s embedding with every patch's, laid out as the grid; NaN between tiles."""
    similarity = centred_similarity(embeddings).view(grid, grid, grid, grid).numpy()
    step = grid + 1
    mosaic = np.full((grid * step - 1, grid * step - 1), np.nan)
    for row in range(grid):
        for col in range(grid):
            mosaic[row * step:row * step + grid, col * step:col * step + grid] = similarity[row, col]
    return mosaic


def position_similarity_figure(panels: dict[str, torch.Tensor], grid: int, title: str) -> Figure:
    """For each entry (name: (grid**2, C) patch position embeddings, class token left out),
    the similarity of each position with all others, one small map per position."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 0.8, 5.4),
                             layout="constrained", squeeze=False)
    fig.suptitle(title)
    colours = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    for ax, (name, embeddings) in zip(axes[0], panels.items()):
        image = ax.imshow(similarity_mosaic(embeddings, grid), cmap=colours, vmin=-1, vmax=1)
        centres = [(grid + 1) * index + (grid - 1) / 2 for index in range(grid)]
        ax.set_xticks(centres, [str(index) for index in range(grid)])
        ax.set_yticks(centres, [str(index) for index in range(grid)])
        ax.set(title=name, xlabel="patch column", ylabel="patch row")
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="cosine similarity (centred)")
    return closed(fig)


def training_curves_figure(losses: dict[str, Sequence[float]], chance: float, title: str,
                           smooth: int = 10) -> Figure:
    """Training loss per step for each model (a running mean of `smooth` steps), and the loss
    of a uniform guess, `chance` (ln of the number of classes)."""
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    smooth = max(1, min([smooth, *map(len, losses.values())]))  # a run shorter than the window
    for name, values in losses.items():
        values = np.asarray(values)
        kernel = np.ones(smooth) / smooth
        ax.plot(np.arange(smooth, len(values) + 1), np.convolve(values, kernel, mode="valid"),
                label=name)
    ax.axhline(chance, color="#999999", linestyle=":", label=f"uniform guess: {chance:.2f}")
    ax.set(title=title, xlabel="training step",
           ylabel=f"cross-entropy in nats (mean of {smooth} steps)")
    ax.legend()
    ax.grid(alpha=0.3)
    return closed(fig)


__all__ = ["centred_similarity", "patch_grid_figure", "position_similarity_figure",
           "text_visibility_figure", "training_curves_figure"]
