"""Fashion-MNIST with captions: 28 x 28 grey pictures of clothes, ten classes, many phrasings.

Chapter 08 ("Caption data") builds it; chapter 10 classifies its official test set
zero-shot. The files are looked for, in order:

1. in `root`, when the user names a directory;
2. where Debian's `dataset-fashion-mnist` puts them, /usr/share/datasets/fashion-mnist;
3. in ~/.cache/miniclip/fashion-mnist, where `download=True` saves them from the
   canonical source after checking each file's MD5 against the published checksum.

Splits: "train" (the official 60,000, less a seeded `val_size` of them), "val" (those
`val_size`; pass the same `val_size` for both), "test" (the official 10,000).
"""

import gzip
import hashlib
import urllib.request
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from miniclip.data.english import with_article
from miniclip.data.seeding import keyed_rng

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path.home() / ".cache" / "miniclip" / "fashion-mnist"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MD5 = {  # as published in the Fashion-MNIST README
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
SPLITS = ("train", "val", "test")

CLASSNAMES = [
    "t-shirt", "pair of trousers", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
]  # fmt: skip
SYNONYMS = [  # other words for each class, for varied captions
    ["top", "tee"], ["pair of pants", "pair of slacks"], ["sweater", "jumper"], ["frock"],
    ["jacket", "overcoat"], ["summer shoe", "open shoe"], ["blouse", "button-up shirt"],
    ["trainer", "running shoe"], ["handbag", "purse"], ["boot", "short boot"],
]  # fmt: skip
CAPTION_TEMPLATES = [
    "a photo of {}.",
    "a black and white photo of {}.",
    "a small grey picture of {}.",
    "a low resolution photo of {}.",
    "{} on a black background.",
    "a product photo of {}.",
]
TEMPLATES = [  # for zero-shot prompts: "the" reads right before every class name
    "a photo of the {}.",
    "a black and white photo of the {}.",
    "a low resolution photo of the {}.",
    "the {} on a black background.",
    "a product photo of the {}.",
]


def class_captions(label: int) -> list[str]:
    """Every template with every name of the class, the plainest first."""
    names = [CLASSNAMES[label], *SYNONYMS[label]]
    return [template.format(with_article(name)) for name in names for template in CAPTION_TEMPLATES]


def find_files(root: str | Path | None, download: bool) -> Path:
    """The directory that holds the four files; see the module docstring for the order."""
    places = [Path(root)] if root is not None else [DEBIAN_DIR, CACHE_DIR]
    for place in places:
        if all(locate(place, name) is not None for name in MD5):
            return place
    if download:
        target = Path(root) if root is not None else CACHE_DIR
        fetch(target)
        return target
    raise FileNotFoundError(
        f"Fashion-MNIST not found in {', '.join(map(str, places))}. Three ways to get it:\n"
        "  1. apt-get install dataset-fashion-mnist  (Debian, Ubuntu)\n"
        "  2. load_dataset('fashion', root=DIR), DIR holding train-images-idx3-ubyte.gz etc.\n"
        "     (on the command line: --data-root DIR)\n"
        "  3. load_dataset('fashion', download=True)  (needs internet; checksums are verified;\n"
        "     on the command line: --data-option download=true)"
    )


def locate(directory: Path, name: str) -> Path | None:
    """`name` in `directory`, gzipped as published or already unpacked."""
    for path in (directory / name, directory / name.removesuffix(".gz")):
        if path.exists():
            return path
    return None


def fetch(directory: Path) -> None:
    """Download the four files, keeping each only if its MD5 equals the published one."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, md5 in MD5.items():
        with urllib.request.urlopen(URL + name, timeout=60) as response:
            data = response.read()
        if hashlib.md5(data).hexdigest() != md5:
            raise OSError(
                f"{URL + name}: MD5 {hashlib.md5(data).hexdigest()} is not the published {md5}"
            )
        (directory / name).write_bytes(data)


@cache
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): a magic number, the shape, then unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    dims = data[3] if len(data) >= 4 and data[:3] == b"\x00\x00\x08" else 0
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(dims))
    if dims == 0 or len(data) != 4 + 4 * dims + int(np.prod(shape)):
        raise ValueError(f"{path}: not an IDX file of unsigned bytes, or truncated")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class FashionMNIST(Dataset):
    """Item i is (28 x 28 greyscale image, captions of its class)."""

    classnames = CLASSNAMES
    templates = TEMPLATES

    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        root: str | Path | None = None,
        download: bool = False,
        val_size: int = 0,
    ):
        if split not in SPLITS:
            raise ValueError(f"fashion has splits {SPLITS}, not {split!r}")
        if split == "val" and val_size <= 0:
            raise ValueError("split 'val' needs val_size > 0 (pass the same val_size for 'train')")
        directory = find_files(root, download)
        prefix = "t10k" if split == "test" else "train"
        self.images = read_idx(locate(directory, f"{prefix}-images-idx3-ubyte.gz"))  # (N, 28, 28)
        self.labels = read_idx(locate(directory, f"{prefix}-labels-idx1-ubyte.gz"))  # (N,)
        self.indices = np.arange(len(self.labels))
        if split != "test" and val_size > 0:
            order = keyed_rng(seed).permutation(len(self.labels))
            self.indices = np.sort(order[:val_size] if split == "val" else order[val_size:])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Image.Image, list[str]]:
        index = self.indices[i]
        return Image.fromarray(self.images[index]), class_captions(int(self.labels[index]))

    def label(self, i: int) -> int:
        """Index into `classnames` of item i."""
        return int(self.labels[self.indices[i]])
