"""Figures of the contrastive loss (chapter 07): what the temperature does, the loss against
the batch size, and why the logit scale is capped.

Every function returns a matplotlib Figure that is already closed (see `miniclip.plots`).
`temperature_figure` is also what the explorer of `miniclip.widgets_loss` draws. Matrices
have texts as rows and images as columns, the orientation of `logits_per_text`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from miniclip.loss import clip_loss
from miniclip.plots_model import PROBABILITY_COLORS, draw_matrix

INITIAL_TEMPERATURE = 0.07  # the paper's initial τ, logit_scale = ln(1/0.07)
SMALLEST_TEMPERATURE = 0.01  # the cap: logit_scale <= ln 100
TEMPERATURES = np.logspace(math.log10(0.003), math.log10(3), 121)  # the loss curve's τ axis


def losses_over_temperatures(cosines: torch.Tensor, temperatures: Sequence[float]) -> list[float]:
    """clip_loss(cosines / τ) for each τ, all at once: the loss of these cosines at each τ."""
    logits = cosines[None] / torch.as_tensor(temperatures, dtype=cosines.dtype)[:, None, None]
    diagonal = logits.diagonal(dim1=1, dim2=2)  # (T, N): the matching pairs
    rows = (logits.logsumexp(dim=2) - diagonal).mean(dim=1)  # each text's cross-entropy
    columns = (logits.logsumexp(dim=1) - diagonal).mean(dim=1)  # each image's
    return ((rows + columns) / 2).tolist()


def outline_diagonal(ax, size: int) -> None:
    """Frame the cells of the matching pairs, the targets of the loss."""
    for index in range(size):
        ax.add_patch(Rectangle((index - 0.5, index - 0.5), 1, 1, fill=False, edgecolor="#d62728",
                               linewidth=1.5))


def temperature_figure(cosines: torch.Tensor, temperature: float, title: str | None = None) -> Figure:
    """An (N, N) matrix of cosines (texts x images) at temperature τ: each text's softmax over
    the images, each image's softmax over the texts, and the loss against τ with τ marked."""
    size = cosines.size(0)
    logits = cosines / temperature
    rows, columns = logits.softmax(dim=1), logits.softmax(dim=0)
    loss = clip_loss(logits).item()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.25]})
    texts = [f"text {i}" for i in range(size)]
    images = [f"image {j}" for j in range(size)]
    annotate = size <= 10
    draw_matrix(axes[0], rows, texts, images, "text → image: softmax of each row",
                PROBABILITY_COLORS, 0, 1, annotate)
    image = draw_matrix(axes[1], columns, texts, images, "image → text: softmax of each column",
                        PROBABILITY_COLORS, 0, 1, annotate)
    for ax in axes[:2]:
        outline_diagonal(ax, size)
    fig.colorbar(image, ax=axes[:2], shrink=0.7, label="probability", location="bottom")

    curve = axes[2]
    curve.plot(TEMPERATURES, losses_over_temperatures(cosines, TEMPERATURES), color="#1f77b4",
               label="clip_loss(cosines / τ)")
    curve.axhline(math.log(size), color="#7f7f7f", linestyle="--",
                  label=f"ln N = {math.log(size):.2f}: uniform logits")
    curve.axvline(INITIAL_TEMPERATURE, color="#2ca02c", linestyle=":", label=f"τ = {INITIAL_TEMPERATURE}: the start")
    curve.axvline(SMALLEST_TEMPERATURE, color="#d62728", linestyle=":", label=f"τ = {SMALLEST_TEMPERATURE}: the cap")
    curve.plot([temperature], [loss], marker="o", markersize=9, color="black", linestyle="none",
               label=f"τ = {temperature:.3g}: loss {loss:.3f}")
    curve.set(xscale="log", title="loss against temperature", ylim=(0, None),
              xlabel="temperature τ (no unit, log scale)", ylabel="contrastive loss (nats)")
    curve.legend(fontsize=8)
    curve.grid(alpha=0.3, which="both")
    fig.suptitle(title or f"N = {size} pairs at τ = {temperature:.3g} (logit scale "
                          f"{1 / temperature:.3g}): loss {loss:.3f}")
    plt.close(fig)
    return fig


def batch_size_figure(sizes: Sequence[int], curves: dict[str, Sequence[float]], title: str) -> Figure:
    """The loss against the batch size N, one line per entry of `curves`, with ln N for reference."""
    fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    ax.plot(sizes, [math.log(size) for size in sizes], color="#7f7f7f", linestyle="--",
            label="ln N: uniform logits")
    for (name, losses), marker in zip(curves.items(), "osd^v"):
        ax.plot(sizes, losses, marker=marker, label=name)
    ax.set(xscale="log", title=title, xlabel="batch size N (pairs, log scale)",
           ylabel="contrastive loss (nats)")
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.legend()
    ax.grid(alpha=0.3)
    plt.close(fig)
    return fig


def clamp_figure(scales: Sequence[float], losses: dict[str, Sequence[float]],
                 gradient_norms: dict[str, Sequence[float]], title: str) -> Figure:
    """Loss and gradient size against the logit scale exp(t), for a few batches."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    for name in losses:
        left.plot(scales, losses[name], label=name)
        right.plot(scales, gradient_norms[name], label=name)
    left.set(title="loss: its slope on this axis is dL/dt", ylabel="contrastive loss (nats)")
    right.set(title="size of the gradient on the embeddings", yscale="log",
              ylabel="gradient norm (nats per unit of embedding)")
    for ax in (left, right):
        ax.axvline(1 / INITIAL_TEMPERATURE, color="#2ca02c", linestyle=":",
                   label=f"start: {1 / INITIAL_TEMPERATURE:.1f}")
        ax.axvline(1 / SMALLEST_TEMPERATURE, color="#d62728", linestyle=":",
                   label=f"cap: {1 / SMALLEST_TEMPERATURE:.0f}")
        ax.set(xscale="log", xlabel="logit scale exp(t) = 1/τ (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    plt.close(fig)
    return fig
