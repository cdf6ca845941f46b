"""Figures of a trained CLIP at work (chapters 00 and 10): similarities, probabilities, search.

Every function returns a matplotlib Figure that is already closed (see `miniclip.plots`),
takes numbers that the notebook computed (so a test can feed it made-up ones) and draws
shapes in their own colours with one marker per kind. Matrices have texts as rows and
images as columns, the orientation of `logits_per_text`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from PIL import Image

from miniclip.data.shapes import COLOURS, KINDS

MARKERS = dict(zip(KINDS, "os^*Pd"))  # circle, square, triangle, star, plus sign, diamond
RIGHT, WRONG = "#2ca02c", "#d62728"


def shape_colour(colour: str) -> tuple[float, float, float]:
    """The RGB colour (0 to 1) that the shapes data paints `colour` with."""
    return tuple(channel / 255 for channel in COLOURS[colour])


def wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def closed(figure: Figure) -> Figure:
    plt.close(figure)
    return figure


def frame(axis, colour: str | None, width: float = 4.0) -> None:
    """Hide the ticks of an image panel and colour its border (None: a thin grey one)."""
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(colour or "#999999")
        spine.set_linewidth(width if colour else 0.8)


# ---- chapter 00: similarities, probabilities, predictions ---------------------------------


def similarity_figure(similarity: torch.Tensor, images: Sequence[Image.Image], texts: Sequence[str],
                      title: str) -> Figure:
    """A (texts, images) matrix of cosine similarities, each image drawn above its column."""
    values = similarity.detach().float().numpy()
    rows, columns = values.shape
    figure, axis = plt.subplots(figsize=(1.1 * columns + 4.5, 0.6 * rows + 2.6), layout="constrained")
    shown = axis.imshow(values, cmap="viridis", aspect="auto")
    for row in range(rows):
        for column in range(columns):
            best = values[row, column] == values[row].max()
            axis.text(column, row, f"{values[row, column]:.2f}", ha="center", va="center",
                      fontsize=8, color="black" if values[row, column] > values.mean() else "white",
                      fontweight="bold" if best else "normal")
    for column, image in enumerate(images):
        axis.imshow(image, extent=(column - 0.45, column + 0.45, -0.6, -1.5), clip_on=False)
    axis.set_xlim(-0.5, columns - 0.5)
    axis.set_ylim(rows - 0.5, -1.55)
    axis.set_yticks(range(rows), [wrap(text, 40) for text in texts], fontsize=8)
    axis.set_xticks(range(columns), [f"image {column}" for column in range(columns)], fontsize=8)
    axis.set(title=title, xlabel="image", ylabel="caption")
    figure.colorbar(shown, ax=axis, label="cosine similarity", shrink=0.8)
    return closed(figure)


def draw_probabilities(axis, labels: Sequence[str], probabilities: torch.Tensor, top: int,
                       truth: str | None = None) -> None:
    """Horizontal bars of the `top` largest probabilities, the largest on top; `truth` in green."""
    values, order = probabilities.detach().float().sort(descending=True)
    values, order = values[:top].tolist(), order[:top].tolist()
    names = [labels[i] for i in order]
    colours = [RIGHT if name == truth else "#1f77b4" for name in names]
    positions = np.arange(len(names))[::-1]
    axis.barh(positions, values, color=colours)
    axis.set_yticks(positions, names, fontsize=9)
    for position, value in zip(positions, values):
        axis.text(value + 0.01, position, f"{value:.2f}", va="center", fontsize=8)
    axis.set_xlim(0, 1.12)
    axis.set_xlabel("probability (softmax over the labels)")


def probability_figure(image: Image.Image, labels: Sequence[str], probabilities: torch.Tensor,
                       title: str, top: int = 8, truth: str | None = None) -> Figure:
    """An image and the probabilities that the model gives each label (the `top` largest)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 0.35 * min(top, len(labels)) + 2.2),
                                         width_ratios=[1, 2], layout="constrained")
    left.imshow(image)
    frame(left, None)
    left.set_title(f"the image ({truth})" if truth else "the image", fontsize=10)
    draw_probabilities(right, labels, probabilities, top, truth)
    right.set_title(f"top {min(top, len(labels))} of {len(labels)} labels"
                    + (" (the true one in green)" if truth else ""), fontsize=10)
    figure.suptitle(title)
    return closed(figure)


def predictions_figure(images: Sequence[Image.Image], predicted: Sequence[str],
                       probabilities: Sequence[float], truths: Sequence[str], title: str,
                       columns: int = 4) -> Figure:
    """Images under their predicted label and its probability: green frame right, red wrong."""
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False,
                                layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, guess, probability, truth in zip(axes.flat, images, predicted, probabilities,
                                                      truths):
        axis.axis("on")
        axis.imshow(image)
        right = guess == truth
        frame(axis, RIGHT if right else WRONG)
        axis.set_title(f"{guess} ({probability:.2f})", fontsize=9, color=RIGHT if right else WRONG)
        axis.set_xlabel(f"truth: {truth}", fontsize=8)
    figure.suptitle(title)
    return closed(figure)


# ---- search and ranking: text to image, image to text -------------------------------------


def search_figure(queries: Sequence[str], images: Sequence[Image.Image], scores: torch.Tensor,
                  indices: torch.Tensor, title: str, matches: torch.Tensor | None = None,
                  match_labels: tuple[str, str] = ("shows what the query asks", "does not")) -> Figure:
    """Per query (a row), its best images from left to right, with their cosine similarity.

    scores, indices: (Q, top), as from `similarity.topk(top, dim=1)`; matches (Q, top),
    optional: True where the image is a right answer (green frame), else red; `match_labels`
    say what green and red mean in the legend.
    """
    count, top = indices.shape
    figure, axes = plt.subplots(count, top, figsize=(1.9 * top + 2.4, 2.15 * count), squeeze=False,
                                layout="constrained")
    for row, query in enumerate(queries):
        for column in range(top):
            axis = axes[row, column]
            axis.imshow(images[int(indices[row, column])])
            colour = None if matches is None else (RIGHT if matches[row, column] else WRONG)
            frame(axis, colour, width=3.5)
            axis.set_xlabel(f"#{column + 1}: {float(scores[row, column]):.3f}", fontsize=8)
        axes[row, 0].set_ylabel(wrap(query, 22), fontsize=9, rotation=0, ha="right", va="center")
    figure.suptitle(title)
    if matches is not None:
        figure.legend(handles=[Line2D([], [], color=RIGHT, lw=4, label=match_labels[0]),
                               Line2D([], [], color=WRONG, lw=4, label=match_labels[1])],
                      loc="outside lower center", ncol=2, frameon=False)
    return closed(figure)


def ranking_figure(images: Sequence[Image.Image], captions: Sequence[Sequence[str]],
                   scores: torch.Tensor, correct: torch.Tensor, title: str) -> Figure:
    """Image-to-text retrieval: per image (a row), its best captions from a pool, best first.

    captions[i][k] is image i's k-th best caption, scores and correct (N, K) its cosine and
    whether it is one of the image's own captions (green) or not (red).
    """
    count = len(images)
    figure, axes = plt.subplots(count, 2, figsize=(10, 1.9 * count), width_ratios=[1, 4.5],
                                squeeze=False, layout="constrained")
    for row, image in enumerate(images):
        picture, text = axes[row]
        picture.imshow(image)
        frame(picture, None)
        picture.set_ylabel(f"image {row}", fontsize=9)
        text.axis("off")
        text.set_xlim(0, 1)
        text.set_ylim(len(captions[row]) - 0.5, -0.5)
        for rank, caption in enumerate(captions[row]):
            own = bool(correct[row, rank])
            text.text(0.0, rank, f"#{rank + 1}  {float(scores[row, rank]):.3f}  "
                      f"{'✓' if own else '✗'}  {caption}", fontsize=9, va="center",
                      color=RIGHT if own else WRONG, clip_on=True)
    figure.suptitle(title)
    return closed(figure)


# ---- chapter 10: measurements ----------------------------------------------------------


def template_figure(accuracies: dict[str, Sequence[float]], names: Sequence[str], chance: float,
                    title: str) -> Figure:
    """Zero-shot accuracy per prompt: one group of bars per entry of `names` (each template
    alone, then the ensemble), one bar per split (`accuracies`: split -> one value per name)."""
    figure, axis = plt.subplots(figsize=(9, 0.45 * len(names) * len(accuracies) + 1.8),
                                layout="constrained")
    height = 0.8 / len(accuracies)
    positions = np.arange(len(names))[::-1]
    for offset, (split, values) in enumerate(accuracies.items()):
        where = positions + (len(accuracies) / 2 - offset - 0.5) * height
        bars = axis.barh(where, values, height=height * 0.95, label=split)
        for y, value in zip(where, values):
            axis.text(value + 0.005, y, f"{value:.3f}", va="center", fontsize=8,
                      color=bars.patches[0].get_facecolor())
    axis.axvline(chance, color="grey", linestyle="--", label=f"chance: {chance:.3f}")
    axis.set_yticks(positions, [name if name == "ensemble" else f'"{name}"' for name in names])
    axis.set(title=title, xlabel="zero-shot top-1 accuracy (fraction of images)",
             xlim=(0, max(max(values) for values in accuracies.values()) * 1.15 + 0.02))
    axis.legend(loc="lower right", fontsize=8)
    return closed(figure)


def pair_accuracy_figure(accuracy: np.ndarray, colours: Sequence[str], kinds: Sequence[str],
                         held_out: Sequence[tuple[str, str]], title: str) -> Figure:
    """Accuracy per colour (row) and kind (column); held-out pairs framed in black."""
    figure, axis = plt.subplots(figsize=(7.5, 5.2), layout="constrained")
    # a pair without images (NaN) is drawn grey, its "–" in black
    shown = axis.imshow(accuracy, cmap=plt.get_cmap("viridis").with_extremes(bad="#d9d9d9"),
                        vmin=0, vmax=1)
    for row, colour in enumerate(colours):
        for column, kind in enumerate(kinds):
            value = accuracy[row, column]
            axis.text(column, row, "–" if np.isnan(value) else f"{value:.2f}", ha="center",
                      va="center", fontsize=9, color="white" if value <= 0.5 else "black")
            if (colour, kind) in held_out:
                axis.add_patch(plt.Rectangle((column - 0.48, row - 0.48), 0.96, 0.96, fill=False,
                                             edgecolor="black", linewidth=2.5))
    axis.set_xticks(range(len(kinds)), kinds)
    axis.set_yticks(range(len(colours)), colours)
    axis.set(title=title, xlabel="kind of shape", ylabel="colour")
    figure.colorbar(shown, ax=axis, label="top-1 accuracy (fraction of images)")
    figure.legend(handles=[plt.Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", linewidth=2.5,
                                         label="held-out pair: never seen in training")],
                  loc="outside lower center", frameon=False)
    return closed(figure)


def recall_figure(ks: Sequence[int], recalls: dict[str, Sequence[float]],
                  chance: dict[str, Sequence[float]], title: str) -> Figure:
    """Recall@K against K for each direction, with what random rankings would score."""
    figure, axis = plt.subplots(figsize=(7, 4), layout="constrained")
    for (name, values), colour in zip(recalls.items(), ("#1f77b4", "#ff7f0e")):
        axis.plot(ks, values, marker=".", color=colour, label=name)
        axis.plot(ks, chance[name], linestyle="--", color=colour, alpha=0.6,
                  label=f"{name}: random ranking")
    axis.set(title=title, xlabel="K (how many results a query looks at)",
             ylabel="recall@K (fraction of queries)", ylim=(0, 1.02))
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return closed(figure)


def principal_axes(points: torch.Tensor, dims: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), axes (D, dims)) of the principal components of `points` (N, D), by SVD.

    Each axis's sign is fixed so that its largest loading is positive, so the same points
    always give the same picture.
    """
    mean = points.mean(dim=0)
    _, _, right = torch.linalg.svd(points - mean, full_matrices=False)  # rows: directions
    axes = right[:dims].t()  # (D, dims)
    signs = axes.gather(0, axes.abs().argmax(dim=0, keepdim=True)).sign()
    return mean, axes * signs


def scatter_by_kind(axis, points: torch.Tensor, names: Sequence[str], **style) -> None:
    """One scatter call per kind of shape: the kind's marker, each point in its own colour."""
    for kind in KINDS:
        chosen = [i for i, name in enumerate(names) if name.split()[1] == kind]
        if chosen:
            axis.scatter(points[chosen, 0], points[chosen, 1], marker=MARKERS[kind],
                         color=[shape_colour(names[i].split()[0]) for i in chosen], **style)


def embedding_map(image_embeds: torch.Tensor, image_names: Sequence[str], class_embeds: torch.Tensor,
                  class_names: Sequence[str], held_out: Sequence[tuple[str, str]], title: str) -> Figure:
    """Two maps of the joint space, each the plane of its two principal components.

    Left: images (small, one per embedding, named "colour kind") and class vectors (large,
    black edge) in the plane fitted to both together. Right: the class vectors alone, in
    their own plane; held-out pairs named, with a thick edge.
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 6.2), layout="constrained")
    mean, axes = principal_axes(torch.cat([image_embeds, class_embeds]))
    scatter_by_kind(left, (image_embeds - mean) @ axes, image_names, s=14, alpha=0.45, linewidths=0)
    scatter_by_kind(left, (class_embeds - mean) @ axes, class_names, s=170, edgecolors="black",
                    linewidths=1.2)
    left.set(title="images (small) and class vectors (large), one plane fitted to both",
             xlabel="principal component 1 (cosine units)", ylabel="principal component 2")

    mean, axes = principal_axes(class_embeds)
    classes_2d = (class_embeds - mean) @ axes
    pairs = [i for i, name in enumerate(class_names) if tuple(name.split()) in held_out]
    others = [i for i in range(len(class_names)) if i not in pairs]
    scatter_by_kind(right, classes_2d[others], [class_names[i] for i in others], s=170,
                    edgecolors="black", linewidths=0.6)
    scatter_by_kind(right, classes_2d[pairs], [class_names[i] for i in pairs], s=170,
                    edgecolors="black", linewidths=2.5)
    for i in pairs:  # the others are told apart by colour and marker
        right.annotate(class_names[i], (float(classes_2d[i, 0]), float(classes_2d[i, 1])),
                       xytext=(8, 5), textcoords="offset points", fontsize=8, fontweight="bold")
    right.set(title="class vectors alone (thick edge, named: held-out pairs)",
              xlabel="principal component 1 (cosine units)", ylabel="principal component 2")
    handles = [Line2D([], [], marker=MARKERS[kind], color="grey", linestyle="", markersize=9,
                      label=kind) for kind in KINDS]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(KINDS), frameon=False,
                  title="marker: kind of shape; colour: its colour")
    figure.suptitle(title)
    return closed(figure)


# ---- chapter 10: the playground's view ---------------------------------------------------


def playground_figure(image: Image.Image, labels: Sequence[str], probabilities: torch.Tensor,
                      query: str, images: Sequence[Image.Image], scores: torch.Tensor,
                      indices: torch.Tensor) -> Figure:
    """Top: an image and the probabilities of the typed labels. Bottom: a query's best images."""
    top = len(indices)
    width = max(2.0 * top, 10)
    figure = plt.figure(figsize=(width, width / top + 3.6), layout="constrained")
    upper, lower = figure.subfigures(2, 1, height_ratios=[3.4, width / top + 0.2])
    picture, bars = upper.subplots(1, 2, width_ratios=[1, 3])
    picture.imshow(image)
    frame(picture, None)
    picture.set_title("the image", fontsize=10)
    draw_probabilities(bars, labels, probabilities, top=len(labels))
    bars.set_title(f"zero-shot: {len(labels)} typed labels", fontsize=10)
    tiles = lower.subplots(1, top, squeeze=False)[0]
    for rank, (axis, index, score) in enumerate(zip(tiles, indices.tolist(), scores.tolist())):
        axis.imshow(images[index])
        frame(axis, None)
        axis.set_xlabel(f"#{rank + 1}: {score:.3f}", fontsize=8)
    lower.suptitle(f'search: the {top} best of {len(images)} images for "{query}" (cosine)',
                   fontsize=10)
    return closed(figure)
