"""Save a picture of samples and captions for every built-in dataset to docs/data/.

Chapter 08 ("Caption data") shows the same pictures with `show_samples`. Run from the
repository root (Fashion-MNIST needs `apt-get install dataset-fashion-mnist`, see
miniclip/data/fashion.py):

    python scripts/make_data_previews.py
"""

from pathlib import Path

import matplotlib.pyplot as plt

from miniclip.data import load_dataset
from miniclip.data.preview import show_samples

OUT = Path(__file__).resolve().parents[1] / "docs" / "data"
PREVIEWS = {  # file name: (dataset, split, options, title)
    "shapes": ("shapes", "train", {}, "shapes, train: one to three shapes, 64 x 64"),
    "shapes_test": ("shapes", "test", {}, "shapes, test: held-out colour-shape pairs (zero-shot)"),
    "shapes_relations": (
        "shapes",
        "relations",
        {},
        "shapes, relations: two shapes and where they are",
    ),
    "fashion": ("fashion", "train", {}, "Fashion-MNIST, train: 28 x 28, captions per class"),
    "emoji": ("emoji", "test", {}, "emoji, test: held-out emoji with their Unicode names"),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (dataset, split, options, title) in PREVIEWS.items():
        figure = show_samples(load_dataset(dataset, split, **options), n=8, title=title)
        figure.savefig(OUT / f"{name}.png", dpi=72)
        plt.close(figure)
        print(f"wrote {OUT / name}.png")


if __name__ == "__main__":
    main()
