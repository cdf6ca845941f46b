"""A picture of a dataset: a grid of sample images, each under its captions.

Chapter 08 ("Caption data") calls `show_samples` for every built-in dataset;
`scripts/make_data_previews.py` saves the same pictures to `docs/data/`.
"""

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch.utils.data import Dataset


def show_samples(
    ds: Dataset, n: int = 8, columns: int = 4, captions: int = 2, title: str = ""
) -> Figure:
    """`n` items spread evenly over `ds`, each with (up to) `captions` of its captions."""
    n = min(n, len(ds))
    items = np.linspace(0, len(ds) - 1, n).round().astype(int).tolist()
    rows = -(-n // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 4.2 * rows), squeeze=False, layout="constrained"
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, index in zip(axes.flat, items):
        image, texts = ds[index]
        axis.imshow(image, cmap="gray" if image.mode == "L" else None, interpolation="nearest")
        wrapped = ["\n".join(textwrap.wrap(t, 40)) for t in texts[:captions]]
        axis.set_title("\n".join(wrapped), fontsize=8, loc="left")
    figure.suptitle(title or f"{type(ds).__name__}: {n} of {len(ds)} items and their captions")
    return figure
