"""Figures for the course: masks, attention maps, activations, the residual stream.

Every function returns a matplotlib Figure that is already closed, so a notebook cell
shows it once (as the cell's value) and a test can inspect it without a display. The
widgets in `miniclip.widgets` draw with these same functions.

Conventions: rows are queries (the token that looks), columns are keys (the tokens it
looks at), as in the (T, T) matrices of attention; allowed cells are dark, hidden ones
light; masked attention weights are drawn grey, not as zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

MASK_COLORS = ListedColormap(["#f2f2f2", "#1f4e79"])  # hidden, allowed
WEIGHT_COLORS = matplotlib.colormaps["viridis"].with_extremes(bad="#bdbdbd")
SPECIAL_LABELS = {"<|startoftext|>": "<sot>", "<|endoftext|>": "<eot>"}


def token_labels(tokenizer, input_ids: Sequence[int], attention_mask: Sequence[int] | None = None
                 ) -> list[str]:
    """A short readable label per token: the word piece, <sot>, <eot> or <pad>."""
    labels = []
    for position, token_id in enumerate(int(i) for i in input_ids):
        if attention_mask is not None and not attention_mask[position]:
            labels.append("<pad>")
            continue
        token = tokenizer.decoder[token_id]
        text = tokenizer.decode([token_id])
        if token in SPECIAL_LABELS:
            text = SPECIAL_LABELS[token]
        elif "\N{REPLACEMENT CHARACTER}" in text:  # part of a multi-byte character
            text = token.removesuffix("</w>")
        labels.append(text)
    return labels


def as_matrix(tensor: torch.Tensor, length: int) -> np.ndarray:
    """A (T, T) numpy array from a mask or weights that broadcast to (..., T, T)."""
    tensor = tensor.detach().cpu()
    while tensor.dim() > 2:
        tensor = tensor[0]
    return tensor.expand(length, length).float().numpy()


def label_axes(ax, labels: Sequence[str] | None, length: int, title: str) -> None:
    ax.set_title(title)
    ax.set_xlabel("key: the token looked at")
    ax.set_ylabel("query: the token looking")
    ticks = range(length)
    ax.set_xticks(ticks, labels if labels else [str(i) for i in ticks], rotation=90)
    ax.set_yticks(ticks, labels if labels else [str(i) for i in ticks])
    if length > 24:  # too many names to read: keep every few
        step = (length + 23) // 24
        for axis_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for index, label in enumerate(axis_labels):
                label.set_visible(index % step == 0)


def draw_mask(ax, mask: torch.Tensor, labels: Sequence[str] | None, title: str) -> None:
    """A boolean mask as dark (allowed) and light (hidden) cells."""
    length = mask.shape[-1]
    ax.imshow(as_matrix(mask.bool(), length), cmap=MASK_COLORS, vmin=0, vmax=1)
    label_axes(ax, labels, length, title)


def draw_weights(ax, weights: torch.Tensor, labels: Sequence[str] | None, title: str,
                 mask: torch.Tensor | None = None):
    """Attention weights in [0, 1]; cells that the mask hides are grey. Returns the image."""
    length = weights.shape[-1]
    values = as_matrix(weights, length)
    if mask is not None:
        values = np.ma.masked_where(as_matrix(mask.bool(), length) == 0, values)
    image = ax.imshow(values, cmap=WEIGHT_COLORS, vmin=0, vmax=1)
    label_axes(ax, labels, length, title)
    return image


def figure(panels: int, title: str | None, width: float = 3.6, height: float = 5.0):
    """A row of `panels` axes laid out by matplotlib's constrained layout."""
    fig, axes = plt.subplots(1, panels, figsize=(max(width * panels + 0.8, 5.5), height),
                             squeeze=False, layout="constrained")
    if title:
        fig.suptitle(title)
    return fig, list(axes[0])


def closed(fig: Figure, masks: bool = False, hidden_weights: bool = False) -> Figure:
    """Add the key of the mask colours below the panels if asked, and close the figure."""
    handles = []
    if masks:
        handles += [Patch(color=MASK_COLORS(1), label="mask: allowed (True)"),
                    Patch(facecolor=MASK_COLORS(0), edgecolor="#999999",
                          label="mask: hidden (False)")]
    if hidden_weights:
        handles.append(Patch(color=WEIGHT_COLORS.get_bad(), label="weight: hidden by the mask"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    plt.close(fig)
    return fig


def mask_figure(masks: dict[str, torch.Tensor], labels: Sequence[str] | None = None,
                title: str | None = None) -> Figure:
    """Masks side by side, one panel per entry of `masks` (name: mask broadcasting to (T, T))."""
    fig, axes = figure(len(masks), title)
    for ax, (name, mask) in zip(axes, masks.items()):
        draw_mask(ax, mask, labels, name)
    return closed(fig, masks=True)


def attention_figure(weights: torch.Tensor, labels: Sequence[str] | None = None,
                     mask: torch.Tensor | None = None, title: str | None = None) -> Figure:
    """One panel per head of `weights` (H, T, T) (or a single (T, T) map, or a batch of one,
    (1, H, T, T), as a model returns them), one colour scale."""
    if weights.dim() == 4 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.dim() == 2:
        weights = weights[None]
    if weights.dim() != 3 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"attention weights must be (H, T, T), (T, T) or (1, H, T, T); got shape "
                         f"{tuple(weights.shape)} (pick one item of a batch: weights[i])")
    fig, axes = figure(weights.shape[0], title, height=4.4)
    for head, ax in enumerate(axes):
        image = draw_weights(ax, weights[head], labels, f"head {head}", mask)
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    return closed(fig, hidden_weights=mask is not None)


def explorer_figure(labels: Sequence[str], causal: torch.Tensor, padding: torch.Tensor,
                    weights: torch.Tensor, title: str) -> Figure:
    """The attention explorer's view: causal, padding and combined masks, then the weights."""
    combined = causal.bool() & padding.bool()
    fig, axes = figure(4, None, width=4.0, height=5.2)
    draw_mask(axes[0], causal, labels, "causal mask")
    draw_mask(axes[1], padding, labels, "padding mask")
    draw_mask(axes[2], combined, labels, "combined: causal & padding")
    image = draw_weights(axes[3], weights, labels, title, combined)
    fig.colorbar(image, ax=axes[3], shrink=0.8, label="attention weight")
    return closed(fig, masks=True, hidden_weights=True)


def activation_figure() -> Figure:
    """QuickGELU next to GELU and ReLU, and how far QuickGELU is from GELU."""
    x = torch.linspace(-4, 4, 401)
    quick = x * torch.sigmoid(1.702 * x)
    gelu = torch.nn.functional.gelu(x)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    left.plot(x, torch.relu(x), label="ReLU: max(0, x)", color="#999999", linestyle=":")
    left.plot(x, gelu, label="GELU: x·Φ(x)", color="#1f77b4")
    left.plot(x, quick, label="QuickGELU: x·σ(1.702 x)", color="#d62728", linestyle="--")
    left.set(title="Three activations", xlabel="input x", ylabel="output")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(x, quick - gelu, color="#d62728")
    right.axhline(0, color="#999999", linewidth=0.8)
    right.set(title="QuickGELU − GELU", xlabel="input x", ylabel="difference in output")
    right.grid(alpha=0.3)
    return closed(fig)


def residual_figure(stream: Sequence[float], attention: Sequence[float], mlp: Sequence[float],
                    title: str) -> Figure:
    """Per layer: the size of the residual stream and of what each sub-layer adds to it."""
    layers = np.arange(1, len(attention) + 1)
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    ax.plot(np.arange(len(stream)), stream, marker="o", label="residual stream x")
    ax.plot(layers - 0.5, attention, marker="s", label="attention's write")
    ax.plot(layers, mlp, marker="^", label="MLP's write")
    ax.set(title=title, xlabel="layer (0 = the embeddings going in)",
           ylabel="mean norm per token", yscale="log")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return closed(fig)
