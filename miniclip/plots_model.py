"""Figures of the joint space (chapter 06): similarity matrices and what the temperature does.

Every function returns a matplotlib Figure that is already closed (see `miniclip.plots`).
Matrices are drawn with texts as rows and images as columns, the orientation of
`logits_per_text`. `toy_embeddings` makes the made-up pairs that chapters 06 and 07 use to
show a trained model's kind of similarity matrix without training one.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

SIMILARITY_COLORS = "RdBu_r"  # cosines: blue below 0, red above
PROBABILITY_COLORS = "viridis"


def toy_embeddings(size: int, noise: float, dim: int = 64, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` made-up (text, image) pairs of unit vectors in `dim` dimensions.

    Text i is a random direction; image i is text i plus a random vector of length about
    `noise`, normalised again. noise = 0 gives perfect pairs (cosine 1), large noise pairs
    that are hardly closer than unrelated ones (cosine about 0 ± 1/√dim).
    Returns (text_embeds, image_embeds), each (size, dim).
    """
    generator = torch.Generator().manual_seed(seed)
    text = F.normalize(torch.randn(size, dim, generator=generator), dim=-1)
    offset = torch.randn(size, dim, generator=generator) / dim**0.5  # length about 1
    return text, F.normalize(text + noise * offset, dim=-1)


def draw_matrix(ax, values: torch.Tensor, row_labels: Sequence[str], column_labels: Sequence[str],
                title: str, cmap: str, vmin: float, vmax: float, annotate: bool = True,
                row_axis: str = "text", column_axis: str = "image"):
    """A matrix as a heatmap with labelled rows and columns; returns the image."""
    values = values.detach().cpu().float().numpy()
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title)
    ax.set_xlabel(column_axis)
    ax.set_ylabel(row_axis)
    ax.set_xticks(range(values.shape[1]), column_labels, rotation=90)
    ax.set_yticks(range(values.shape[0]), row_labels)
    if annotate and values.size <= 100:
        middle = (vmin + vmax) / 2
        for (row, column), value in np.ndenumerate(values):
            dark = value < middle if cmap == PROBABILITY_COLORS else abs(value - middle) > 0.6 * (vmax - middle)
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    return image


def similarity_figure(cosines: torch.Tensor, logit_scale: float, text_labels: Sequence[str],
                      image_labels: Sequence[str], title: str) -> Figure:
    """Cosine similarities (N_t, N_i), and each text's softmax over the images at exp(logit_scale)."""
    scale = float(np.exp(logit_scale))
    probabilities = (scale * cosines).softmax(dim=-1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
    image = draw_matrix(left, cosines, text_labels, image_labels,
                        "cosine similarity tᵢ · vⱼ", SIMILARITY_COLORS, -1, 1)
    fig.colorbar(image, ax=left, shrink=0.8, label="cosine (no unit, between -1 and 1)")
    image = draw_matrix(right, probabilities, text_labels, image_labels,
                        f"softmax over images of {scale:.3g} · cosine", PROBABILITY_COLORS, 0, 1)
    fig.colorbar(image, ax=right, shrink=0.8, label="probability (each row sums to 1)")
    fig.suptitle(title)
    plt.close(fig)
    return fig


def temperature_bars_figure(cosines: torch.Tensor, temperatures: Sequence[float],
                            image_labels: Sequence[str], title: str) -> Figure:
    """One text's softmax over the images, softmax(cosine / τ), for each temperature τ."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained",
                                      gridspec_kw={"width_ratios": [1, 2]})
    positions = np.arange(len(cosines))
    left.bar(positions, cosines.numpy(), color="#7f7f7f")
    left.set(title="cosine similarity to each image", xlabel="image",
             ylabel="cosine (no unit)")
    left.set_xticks(positions, image_labels, rotation=90)
    width = 0.8 / len(temperatures)
    for index, temperature in enumerate(temperatures):
        probabilities = (cosines / temperature).softmax(dim=-1).numpy()
        right.bar(positions + (index - (len(temperatures) - 1) / 2) * width, probabilities,
                  width, label=f"τ = {temperature:g}  (scale {1 / temperature:.3g})")
    right.set(title="softmax(cosine / τ)", xlabel="image", ylabel="probability", ylim=(0, 1))
    right.set_xticks(positions, image_labels, rotation=90)
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    plt.close(fig)
    return fig


def cosine_matrices_figure(panels: dict[str, tuple[torch.Tensor, Sequence[str], Sequence[str]]],
                           title: str) -> Figure:
    """Several cosine matrices side by side, on one colour scale from -1 to 1.

    `panels` maps a panel title to (matrix, row labels, column labels); the axis names are
    taken from the title's two sides, e.g. "text · image".
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 1, 5.4),
                             layout="constrained", squeeze=False)
    axes = list(axes[0])
    for ax, (name, (matrix, rows, columns)) in zip(axes, panels.items()):
        row_axis, _, column_axis = name.partition(" · ")
        image = draw_matrix(ax, matrix, rows, columns, name, SIMILARITY_COLORS, -1, 1,
                            row_axis=row_axis, column_axis=column_axis or row_axis)
    fig.colorbar(image, ax=axes, shrink=0.8, label="cosine similarity (no unit)")
    fig.suptitle(title)
    plt.close(fig)
    return fig
