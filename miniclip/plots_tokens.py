"""Figures for chapter 01 ("Text to tokens"): the byte table, the vocabulary, merges, batches.

Like `miniclip.plots`, every function returns a matplotlib Figure that is already closed,
so a notebook cell shows it once and a test can inspect it without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

END_OF_WORD = "</w>"
KIND_COLORS = ListedColormap(["#c6dbef", "#fdd0a2", "#a1d99b", "#f2f2f2"])  # word, sot, eot, pad
KINDS = ["word piece", "<|startoftext|>", "<|endoftext|>", "padding"]


def byte_table_figure(table: dict[int, str]) -> Figure:
    """The 256 bytes in a 16 × 16 grid, each with its character; shifted bytes coloured."""
    shifted = np.array([[ord(table[16 * row + column]) != 16 * row + column
                         for column in range(16)] for row in range(16)])
    fig, ax = plt.subplots(figsize=(7.5, 7.8), layout="constrained")
    ax.imshow(shifted, cmap=ListedColormap(["#eef3f8", "#fdd0a2"]), vmin=0, vmax=1)
    for byte, character in table.items():
        ax.text(byte % 16, byte // 16, character, ha="center", va="center", fontsize=11)
    hexdigits = [f"{d:X}" for d in range(16)]
    ax.set_xticks(range(16), hexdigits)
    ax.set_yticks(range(16), [f"{d:X}_" for d in range(16)])
    ax.set(title="bytes_to_unicode: the character that stands for each byte",
           xlabel="byte value: second hex digit", ylabel="byte value: first hex digit")
    fig.legend(handles=[Patch(color="#eef3f8", label="printable: stands for itself"),
                        Patch(color="#fdd0a2", label="not printable: chr(256 + n)")],
               loc="outside lower center", ncol=2, frameon=False)
    plt.close(fig)
    return fig


def vocabulary_figure(vocab: dict[str, int]) -> Figure:
    """Token length and word endings along the ids, the four parts of the vocabulary shaded.

    The id axis is linear over the 512 byte tokens and logarithmic over the merges.
    """
    tokens = sorted(vocab, key=vocab.get)
    special = [i for i, token in enumerate(tokens) if token.startswith("<|")]
    first_special = special[0] if special else len(tokens)
    lengths = np.array([len(token.removesuffix(END_OF_WORD)) for token in tokens], dtype=float)
    ends = np.array([token.endswith(END_OF_WORD) for token in tokens], dtype=float)
    edges = np.unique(np.concatenate([np.arange(0, 513, 32),
                                      np.geomspace(512, first_special, 40).round()])).astype(int)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
    parts = [(0, 256, "256 bytes", "#dbe6f1"), (256, 512, "256 bytes + </w>", "#fdd0a2"),
             (512, first_special, f"{first_special - 512:,} merges", "#e5f5e0")]
    for low, high, label, colour in parts:
        ax.axvspan(low, high, color=colour, label=f"{label} (ids {low}–{high - 1})")
    for index in special:
        ax.axvline(index, color="#d62728", linewidth=1.5)
    ax.plot(centres, [lengths[a:b].mean() for a, b in pairwise(edges)], color="#1f4e79",
            label="mean length")
    twin = ax.twinx()
    twin.plot(centres, [100 * ends[a:b].mean() for a, b in pairwise(edges)], color="#31a354",
              linestyle="--", label="share ending a word (</w>)")
    twin.set(ylabel="tokens ending a word (%)", ylim=(-3, 103))
    ax.set_xscale("symlog", linthresh=512, linscale=1.0)
    ticks = [0, 256, 512, 1000, 2000, 5000, 10_000, 20_000, len(tokens)]
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.set(title=f"CLIP's {len(tokens):,} tokens: bytes, bytes ending a word, merges, "
                 f"{len(special)} special (red)",
           xlabel="token id (linear up to 512, logarithmic after)",
           ylabel="token length (characters, without </w>)", xlim=(0, len(tokens)))
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    plt.close(fig)
    return fig


def merge_steps_figure(steps: Sequence[tuple[Sequence[str], tuple[str, str] | None]],
                       merge_rank: dict[tuple[str, str], int], title: str) -> Figure:
    """One row per step of BPE: the word's symbols as boxes, the newly merged one coloured."""
    def size(symbol: str) -> float:
        return len(symbol.removesuffix(END_OF_WORD)) + (0.6 if symbol.endswith(END_OF_WORD) else 0)

    width = sum(size(symbol) for symbol in steps[0][0])
    notes = 7.5  # room for the notes on the right, in units of one character box
    fig, ax = plt.subplots(figsize=(0.45 * (width + notes) + 1, 0.5 * len(steps) + 1.2),
                           layout="constrained")
    for row, (symbols, pair) in enumerate(steps):
        x = 0.0
        merged = None if pair is None else pair[0] + pair[1]
        for symbol in symbols:
            new = symbol == merged
            ax.add_patch(Rectangle((x + 0.05, row - 0.4), size(symbol) - 0.1, 0.8, linewidth=1,
                                   edgecolor="#1f4e79", facecolor="#fdae6b" if new else "#eef3f8"))
            label = symbol.replace(END_OF_WORD, "·")
            ax.text(x + size(symbol) / 2, row, label, ha="center", va="center", fontsize=10)
            x += size(symbol)
        note = "start: one symbol per byte" if pair is None else (
            f"rank {merge_rank[pair]:>5}: {pair[0]!r} + {pair[1]!r}")
        ax.text(x + 0.4, row, note, va="center", fontsize=9, family="monospace")
    ax.set_xlim(-0.2, width + notes)
    ax.set_ylim(len(steps) - 0.5, -0.5)
    ax.set_yticks(range(len(steps)))
    ax.set_xticks([])
    ax.set(title=title, ylabel="merge step", xlabel="the word, one box per symbol (· is </w>)")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    plt.close(fig)
    return fig


def batch_figure(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 labels: Sequence[Sequence[str]], special_ids: tuple[int, int], title: str
                 ) -> Figure:
    """A padded batch: each token's text and kind (left), the attention_mask (right)."""
    sot, eot = special_ids
    ids, mask = input_ids.numpy(), attention_mask.numpy()
    kinds = np.where(mask == 0, 3, np.where(ids == sot, 1, np.where(ids == eot, 2, 0)))
    rows, length = ids.shape
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9.0, 1.1 * length), 0.7 * rows + 2.2),
                                      layout="constrained", width_ratios=[1.6, 1])
    left.imshow(kinds, cmap=KIND_COLORS, vmin=0, vmax=3, aspect="auto")
    for row in range(rows):
        for column in range(length):
            left.text(column, row, f"{labels[row][column]}\n{ids[row, column]}", ha="center",
                      va="center", fontsize=7)
    right.imshow(mask, cmap=ListedColormap(["#f2f2f2", "#1f4e79"]), vmin=0, vmax=1, aspect="auto")
    for row in range(rows):
        for column in range(length):
            right.text(column, row, str(mask[row, column]), ha="center", va="center", fontsize=8,
                       color="white" if mask[row, column] else "black")
    for ax, name in ((left, "input_ids (token and id)"), (right, "attention_mask")):
        ax.set_xticks(range(length))
        ax.set_yticks(range(rows))
        ax.set(title=name, xlabel="position in the row (tokens)", ylabel="text in the batch")
    fig.suptitle(title)
    fig.legend(handles=[Patch(color=KIND_COLORS(i), label=kind) for i, kind in enumerate(KINDS)],
               loc="outside lower center", ncol=4, frameon=False)
    plt.close(fig)
    return fig


def token_count_figure(counts: Sequence[int], context_length: int, title: str) -> Figure:
    """Histogram of tokens per text, special tokens included, against the context length."""
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    end = max(max(counts, default=0), context_length) + 2  # the texts that are cut too
    ax.hist(counts, bins=np.arange(0, end + 1) - 0.5, color="#1f4e79")
    ax.axvline(context_length, color="#d62728", linestyle="--",
               label=f"context length {context_length}: longer texts are cut")
    ax.set(title=title, xlabel="tokens per caption, <|startoftext|> and <|endoftext|> included",
           ylabel="captions", xlim=(0, end + 1))
    ax.legend()
    plt.close(fig)
    return fig


def compression_figure(merges: Sequence[int], tokens_per_text: Sequence[float],
                       words_per_text: float, title: str) -> Figure:
    """Mean tokens per text as a BPE vocabulary grows, down towards one token per word."""
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    ax.plot(merges, tokens_per_text, marker="o", color="#1f4e79", label="tokens per caption")
    ax.axhline(words_per_text, color="#31a354", linestyle="--",
               label=f"words per caption ({words_per_text:.1f}): one token per word")
    ax.set(title=title, xlabel="merges learnt (vocabulary = 514 + merges tokens)",
           ylabel="mean tokens per caption", ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend()
    plt.close(fig)
    return fig
