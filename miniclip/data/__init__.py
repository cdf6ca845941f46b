"""Caption datasets behind one function, and the batching that feeds them to a model.

Chapter 08 ("Caption data") builds this package. `load_dataset(name, split, seed, **options)`
returns a dataset whose item i is `(PIL image, [captions])`:

    shapes   procedural coloured shapes, held-out colour-shape pairs, relations (shapes.py)
    fashion  Fashion-MNIST with captions per class (fashion.py)
    emoji    emoji pictures with their Unicode names and keywords (emoji.py)
    folder   a user's own images with a CSV, JSONL, Flickr8k or COCO caption file (folder.py)

`Collate(tokenizer, image_processor)` turns a list of items into `pixel_values`,
`input_ids` and `attention_mask` (collate.py).
"""

import inspect

from torch.utils.data import Dataset

from miniclip.data.collate import Collate
from miniclip.data.emoji import Emoji
from miniclip.data.fashion import FashionMNIST
from miniclip.data.folder import CaptionFolder, DataError
from miniclip.data.shapes import HELD_OUT_PAIRS, Shapes

DATASETS = {"shapes": Shapes, "fashion": FashionMNIST, "emoji": Emoji, "folder": CaptionFolder}


def load_dataset(name: str, split: str = "train", seed: int = 0, **options) -> Dataset:
    """The `split` of dataset `name`; `options` are those of its class (see each module)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    parameters = inspect.signature(DATASETS[name]).parameters
    accepted = [p for p in parameters if p not in ("split", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(accepted)}")
    missing = [p for p in accepted if parameters[p].default is inspect.Parameter.empty and p not in options]
    if missing:  # folder's root
        where = " (on the command line: --data-root DIR)" if missing == ["root"] else ""
        raise ValueError(f"{name} needs the option {', '.join(map(repr, missing))}{where}")
    return DATASETS[name](split=split, seed=seed, **options)


__all__ = [
    "HELD_OUT_PAIRS",
    "CaptionFolder",
    "Collate",
    "DataError",
    "Emoji",
    "FashionMNIST",
    "Shapes",
    "load_dataset",
]
