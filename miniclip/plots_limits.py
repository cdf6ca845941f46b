"""Figures of chapters 11 and 12: the pipeline's answer beside miniclip's, and the limits measured.

Every function returns a matplotlib Figure that is already closed (see `miniclip.plots`).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

OURS, THEIRS, CHANCE = "#1f77b4", "#ff7f0e", "#7f7f7f"


def pipeline_figure(image: Image.Image, labels: Sequence[str], ours: torch.Tensor,
                    theirs: torch.Tensor, true_label: str, title: str, top: int = 8) -> Figure:
    """An image, and the `top` most likely labels with miniclip's and the pipeline's probabilities."""
    order = ours.argsort(descending=True)[:top].tolist()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained",
                                      gridspec_kw={"width_ratios": [1, 2]})
    left.imshow(image)
    left.set_title(f"the image (true: {true_label})")
    left.set_xlabel(f"{image.size[0]} pixels")
    left.set_ylabel(f"{image.size[1]} pixels")
    left.set_xticks([])
    left.set_yticks([])
    rows = np.arange(len(order))
    right.barh(rows - 0.2, ours[order].numpy(), 0.4, color=OURS, label="miniclip")
    right.barh(rows + 0.2, theirs[order].numpy(), 0.4, color=THEIRS,
               label="transformers pipeline")
    names = [f"{labels[i]} ✓" if labels[i] == true_label else labels[i] for i in order]
    right.set_yticks(rows, names)
    right.invert_yaxis()  # most likely on top
    right.set(title=f"the {len(order)} most likely of {len(labels)} labels",
              xlabel="probability (softmax over all labels)", ylabel="label")
    right.legend(loc="lower right")
    right.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    plt.close(fig)
    return fig


def truncation_figure(positions: Sequence[int], distances: Sequence[float], cap: int,
                      title: str) -> Figure:
    """How much a one-word change moves the text embedding, against the position of the word."""
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    ax.plot(positions, distances, marker="o", color=OURS, label="one colour word changed")
    ax.axvline(cap - 1, color="#d62728", linestyle="--",
               label=f"last kept token: position {cap - 1} holds <|endoftext|>")
    ax.set(title=title, xlabel="token position of the changed word (0 = <|startoftext|>)",
           ylabel="1 − cosine between the two embeddings")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    plt.close(fig)
    return fig


def score_bars_figure(names: Sequence[str], scores: Sequence[float], chances: Sequence[float],
                      title: str, xlabel: str, ylabel: str) -> Figure:
    """One bar per measurement, each with its chance level drawn across it."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.7 * len(names) + 1.5), 3.8), layout="constrained")
    positions = np.arange(len(names))
    bars = ax.bar(positions, scores, 0.6, color=OURS, label="measured")
    for position, chance in zip(positions, chances):
        ax.hlines(chance, position - 0.4, position + 0.4, color=CHANCE, linestyle="--", linewidth=2)
    ax.plot([], [], color=CHANCE, linestyle="--", linewidth=2, label="chance")
    ax.bar_label(bars, fmt="%.2f")
    ax.set_xticks(positions, names)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.08))
    fig.legend(loc="outside lower center", ncol=2, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    plt.close(fig)
    return fig


def examples_figure(images: Sequence[Image.Image], captions: Sequence[str], title: str,
                    columns: int = 6, panel_width: float = 2.1) -> Figure:
    """A grid of images, each with a short text above it (lines split at "\n")."""
    rows = -(-len(images) // columns)
    lines = max(caption.count("\n") + 1 for caption in captions)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_width * columns, (2.1 + 0.17 * lines) * rows),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image, cmap="gray" if image.mode == "L" else None)
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    plt.close(fig)
    return fig


def prediction_counts_figure(classnames: Sequence[str], counts: torch.Tensor, title: str) -> Figure:
    """How often each class is the model's answer, most frequent first."""
    order = counts.argsort(descending=True).tolist()
    fig, ax = plt.subplots(figsize=(10, 3.6), layout="constrained")
    ax.bar(np.arange(len(order)), counts[order].numpy(), color=OURS, label="answers")
    ax.axhline(counts.sum().item() / len(classnames), color=CHANCE, linestyle="--",
               label="if every class were as likely")
    ax.set_xticks(np.arange(len(order)), [classnames[i] for i in order], rotation=90)
    ax.set(title=title, xlabel="class answered", ylabel="number of images")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    plt.close(fig)
    return fig
