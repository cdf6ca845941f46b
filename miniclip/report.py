"""Figures of a training run and of an evaluation, saved next to the run.

Chapters 09 and 10 show them: the loss against the ln(batch) line that a model which
has learnt nothing sits on, the temperature and learning rate over the steps,
validation recall, the similarity matrix of a few pairs, and a retrieval grid.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt

from miniclip.evaluate import EVAL_SPLITS


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_training(run_dir: str | Path, save: bool = True):
    """Loss (with the ln(batch) baseline), temperature, learning rate and validation recall."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    settings = json.loads((run_dir / "train_config.json").read_text())
    figure, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    steps = [r["step"] for r in records]
    axes[0].plot(steps, [r["loss"] for r in records], label="training loss")
    axes[0].axhline(math.log(settings["batch_size"]), color="grey", linestyle="--",
                    label=f"ln(batch) = {math.log(settings['batch_size']):.2f}: chance")
    axes[0].set(title="Contrastive loss", xlabel="step", ylabel="loss (nats)")
    axes[0].legend()
    axes[1].plot(steps, [r["temperature"] for r in records])
    axes[1].set(title="Temperature 1/exp(logit_scale)", xlabel="step", ylabel="temperature",
                yscale="log")
    axes[2].plot(steps, [r["lr"] for r in records])
    axes[2].set(title="Learning rate", xlabel="step", ylabel="learning rate")
    validated = [r for r in records if "val_i2t_recall@1" in r]
    # runs of older versions validated on the retrieval split, without naming it
    earlier = EVAL_SPLITS.get(settings["data"], {"retrieval": "test"})["retrieval"]
    split = validated[-1].get("val_split", earlier) if validated else "val"
    axes[3].set(title=f"Retrieval recall on {split!r} (first {settings['eval_size']})",
                xlabel="step", ylabel="recall", ylim=(0, 1.02))
    if validated:
        for key in ("val_i2t_recall@1", "val_i2t_recall@5", "val_t2i_recall@1", "val_t2i_recall@5"):
            axes[3].plot([r["step"] for r in validated], [r[key] for r in validated], marker=".",
                         label=key[4:])
        axes[3].legend(fontsize=8)
    else:
        why = ("not validated in this run\n(eval_every = 0)" if not settings["eval_every"] else
               f"no validation recorded yet\n(every {settings['eval_every']} steps)")
        axes[3].text(0.5, 0.5, why, ha="center", va="center", transform=axes[3].transAxes,
                     color="grey")
    figure.tight_layout()
    if save:
        figure.savefig(run_dir / "training.png", dpi=100)
    plt.close(figure)  # returned closed: a notebook cell shows it once
    return figure


def similarity_figure(encoder, dataset, count: int = 10):
    """Cosine similarity of the first `count` images with their first captions."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    images = encoder.images([image for image, _ in items])
    captions = [captions[0] for _, captions in items]
    texts = encoder.texts(captions)
    similarity = (texts @ images.t()).numpy()
    figure, axis = plt.subplots(figsize=(1.0 * len(items) + 4, 0.55 * len(items) + 2))
    shown = axis.imshow(similarity, cmap="viridis")
    axis.set_yticks(range(len(captions)), captions, fontsize=8)
    axis.set_xticks(range(len(items)), [str(i) for i in range(len(items))])
    for i, (image, _) in enumerate(items):
        axis.imshow(image, extent=(i - 0.45, i + 0.45, len(items) - 0.05 + 0.9, len(items) - 0.05),
                    clip_on=False)
    axis.set_ylim(len(items) + 0.9, -0.5)
    axis.set(title="Cosine similarity: captions (rows) against images (columns)",
             xlabel="image")
    figure.colorbar(shown, ax=axis, label="cosine similarity")
    figure.tight_layout()
    plt.close(figure)
    return figure


def retrieval_grid(encoder, dataset, queries: int = 4, top: int = 5, pool: int = 200):
    """For a few captions, the `top` images of a pool of `pool` that match them best."""
    count = min(pool, len(dataset))
    queries, top = min(queries, count), min(top, count)  # a pool of a few images shows them all
    items = [dataset[i] for i in range(count)]
    images = encoder.images([image for image, _ in items])
    chosen = [items[i * (count // queries)][1][0] for i in range(queries)]
    scores = encoder.texts(chosen) @ images.t()
    best = scores.topk(top, dim=1)
    figure, axes = plt.subplots(queries, top, figsize=(2.0 * top, 2.3 * queries), squeeze=False)
    for row, caption in enumerate(chosen):
        for col in range(top):
            index = int(best.indices[row, col])
            axis = axes[row, col]
            axis.imshow(items[index][0])
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_xlabel(f"{float(best.values[row, col]):.2f}", fontsize=8)
        axes[row, 0].set_ylabel(caption if len(caption) < 40 else caption[:37] + "...", fontsize=8,
                                rotation=0, ha="right", va="center")
    figure.suptitle(f"Text-to-image retrieval: top {top} of {count} images per caption (cosine)")
    figure.tight_layout()
    plt.close(figure)
    return figure

