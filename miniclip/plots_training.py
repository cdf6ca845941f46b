"""Figures of chapters 08 and 09: the data pipeline and the training loop.

Chapter 08 draws a dataset's samples, the stages of CLIP's image preprocessing, random
crops, caption lengths in tokens and a padded batch; chapter 09 the learning-rate
schedule, the loss against ln(batch), a run that overfits one batch and the curves of a
training run. As in `miniclip.plots`, every function returns a closed Figure, so that a
notebook cell shows it once and a test can inspect it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch.utils.data import Dataset

from miniclip.data.preview import show_samples
from miniclip.data.seeding import keyed_rng
from miniclip.image import ImageProcessor, center_crop, random_resized_crop, resize_shortest_edge, to_rgb
from miniclip.plots import token_labels
from miniclip.train import MAX_LOGIT_SCALE


def closed(figure: Figure) -> Figure:
    plt.close(figure)
    return figure


# ---- chapter 08: data -------------------------------------------------------------------


def dataset_figure(ds: Dataset, n: int = 8, **options) -> Figure:
    """`miniclip.data.preview.show_samples`, closed: `n` items of `ds` under their captions."""
    return closed(show_samples(ds, n, **options))


def pixel_axes(axis, title: str) -> None:
    axis.set_title(title, fontsize=10)
    axis.set_xlabel("x (pixels)")
    axis.set_ylabel("y (pixels)")


def preprocessing_figure(image: Image.Image, size: int) -> Figure:
    """The stages of CLIP's preprocessing of one image, and the normalised values it ends with."""
    rgb = to_rgb(image)
    resized = resize_shortest_edge(rgb, size)
    cropped = center_crop(resized, size)
    values = ImageProcessor(size).process(image)  # (3, S, S)
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.8), layout="constrained",
                                gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    axes[0].imshow(rgb)
    pixel_axes(axes[0], f"1. original, RGB: {rgb.width} × {rgb.height}")
    axes[1].imshow(resized)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    axes[1].add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, color="white",
                                linewidth=2, linestyle="--"))
    pixel_axes(axes[1], f"2. shortest edge to {size}: {resized.width} × {resized.height}")
    axes[2].imshow(cropped)
    pixel_axes(axes[2], f"3. centre crop: {cropped.width} × {cropped.height}")
    for channel, colour in enumerate(("red", "green", "blue")):
        axes[3].hist(values[channel].ravel(), bins=40, color=colour, alpha=0.5, label=colour)
    axes[3].set_title("4. rescaled to [0, 1], normalised per channel", fontsize=10)
    axes[3].set_xlabel("(value - mean) / std (dimensionless)")
    axes[3].set_ylabel("pixels")
    axes[3].legend(fontsize=8)
    figure.suptitle("CLIP's image preprocessing, step by step")
    return closed(figure)


def crops_figure(image: Image.Image, size: int, count: int = 5, seed: int = 0) -> Figure:
    """The image after the plain preprocessing, then `count` seeded random resized crops."""
    rng = keyed_rng(seed)
    plain = center_crop(resize_shortest_edge(to_rgb(image), size), size)
    crops = [random_resized_crop(to_rgb(image), size, rng) for _ in range(count)]
    figure, axes = plt.subplots(1, count + 1, figsize=(2.4 * (count + 1), 2.9), layout="constrained")
    for k, (axis, picture) in enumerate(zip(axes, [plain, *crops])):
        axis.imshow(picture)
        pixel_axes(axis, "resize + centre crop" if k == 0 else f"random crop {k}")
    low, high = inspect.signature(random_resized_crop).parameters["scale"].default
    figure.suptitle(f"Augmentation: random crops of {low * 100:.0f}-{high:.0%} of the area, resized to "
                    f"{size} × {size}")
    return closed(figure)


def caption_lengths_figure(lengths: Mapping[str, Sequence[int]], limits: Mapping[str, int]) -> Figure:
    """Histograms of caption lengths in tokens (with <sot> and <eot>), and the context limits."""
    figure, axis = plt.subplots(figsize=(9, 3.6), layout="constrained")
    top = max(max(values) for values in lengths.values())
    bins = np.arange(0, max(top, *limits.values()) + 3) - 0.5
    for name, values in lengths.items():
        axis.hist(values, bins=bins, alpha=0.55, density=True, label=f"{name} ({len(values)} captions)")
    for (label, limit), style in zip(limits.items(), ("--", ":", "-.")):
        axis.axvline(limit, color="black", linestyle=style, label=label)
    axis.set(title="Caption lengths in tokens, <|startoftext|> and <|endoftext|> included",
             xlabel="tokens per caption", ylabel="fraction of captions")
    axis.legend(fontsize=8)
    return closed(figure)


def batch_figure(tokenizer, batch: Mapping[str, torch.Tensor]) -> Figure:
    """A batch's input_ids as a grid of tokens: real tokens coloured, padding grey."""
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    rows, length = input_ids.shape
    figure, axis = plt.subplots(figsize=(0.75 * length + 1.5, 0.5 * rows + 1.4), layout="constrained")
    axis.imshow(attention_mask.numpy(), cmap="Blues", vmin=-0.6, vmax=1.4, aspect="auto")
    for row in range(rows):
        labels = token_labels(tokenizer, input_ids[row].tolist(), attention_mask[row].tolist())
        for column, label in enumerate(labels):
            axis.text(column, row, label, ha="center", va="center", fontsize=7,
                      color="grey" if label == "<pad>" else "black")
    axis.set_xticks(range(length))
    axis.set_yticks(range(rows))
    axis.set(title=f"A batch of {rows} captions padded to its longest, {length} tokens "
                   "(dark: attention_mask = 1)", xlabel="position (token)", ylabel="caption")
    return closed(figure)


# ---- chapter 09: training ---------------------------------------------------------------


def schedule_figure(curves: Mapping[str, Sequence[float]], title: str = "Learning rate: "
                    "linear warm-up, then cosine decay") -> Figure:
    """Learning rate against the fraction of the run done, one line per run (rates per step)."""
    figure, axis = plt.subplots(figsize=(8, 3.4), layout="constrained")
    for label, rates in curves.items():
        axis.plot([step / len(rates) for step in range(len(rates))], rates, marker="." if len(rates) <= 30 else None,
                  label=label)
    axis.set(title=title, xlabel="fraction of the run (step / total steps)", ylabel="learning rate")
    axis.legend(fontsize=8)
    return closed(figure)


def loss_vs_batch_figure(batch_sizes: Sequence[int], curves: Mapping[str, Sequence[float]]) -> Figure:
    """Contrastive loss against ln(N): chance sits on the diagonal, learning below it."""
    logs = [math.log(n) for n in batch_sizes]
    figure, axis = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    axis.plot(logs, logs, color="grey", linestyle="--", label="ln N: chance (uniform logits)")
    for label, losses in curves.items():
        axis.plot(logs, losses, marker="o", label=label)
    axis.set_xticks(logs, [f"ln {n}" for n in batch_sizes], fontsize=8)
    axis.set(title="Contrastive loss against the batch size N", xlabel="ln N (nats)",
             ylabel="loss (nats)")
    axis.legend(fontsize=8)
    return closed(figure)


def overfit_figure(curves: Mapping[str, Sequence[float]], batch_size: int) -> Figure:
    """Loss per step on one fixed batch, with the ln(batch) line of a model that learnt nothing."""
    figure, axis = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    for label, losses in curves.items():
        axis.plot(range(len(losses)), losses, label=label)
    axis.axhline(math.log(batch_size), color="grey", linestyle="--",
                 label=f"ln {batch_size} = {math.log(batch_size):.2f}: chance")
    axis.set(title=f"Overfitting one batch of {batch_size} pairs", xlabel="optimizer step",
             ylabel="loss (nats)", ylim=(0, None))
    axis.legend(fontsize=8)
    return closed(figure)


def training_figure(records: Sequence[Mapping], batch_size: int, title: str = "") -> Figure:
    """A run's metrics.jsonl records: loss with its ln(batch) line, temperature, learning rate."""
    steps = [record["step"] for record in records]
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.7), layout="constrained")
    axes[0].plot(steps, [record["loss"] for record in records], label="training loss")
    axes[0].axhline(math.log(batch_size), color="grey", linestyle="--",
                    label=f"ln {batch_size} = {math.log(batch_size):.2f}: chance")
    axes[0].set(title="Contrastive loss", xlabel="optimizer step", ylabel="loss (nats)")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [record["temperature"] for record in records], label="temperature")
    axes[1].axhline(math.exp(-MAX_LOGIT_SCALE), color="grey", linestyle="--",
                    label=f"clamp: {math.exp(-MAX_LOGIT_SCALE):.2f} (logits at most "
                          f"{math.exp(MAX_LOGIT_SCALE):.0f} × cosine)")
    axes[1].set(title="Temperature 1 / exp(logit_scale)", xlabel="optimizer step",
                ylabel="temperature (dimensionless)", yscale="log")
    axes[1].legend(fontsize=8)
    axes[2].plot(steps, [record["lr"] for record in records])
    axes[2].set(title="Learning rate", xlabel="optimizer step", ylabel="learning rate")
    figure.suptitle(title or f"Training: {steps[-1] if steps else 0} steps of {batch_size} pairs")
    return closed(figure)
