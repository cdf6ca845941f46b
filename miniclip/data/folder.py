"""A user's own captioned images: a folder of pictures and a file of (image, caption) pairs.

Chapter 08 ("Caption data") builds it. Four layouts of the caption file are read:

- CSV with a header naming a file column (`file`, `filename`, `file_name`, `image`, `path`)
  and a `caption` (or `text`) column, one caption a row;
- JSONL, one object a line: {"file": ..., "caption": ...} or {"file": ..., "captions": [...]};
- Flickr8k's `captions.txt`: CSV `image,caption`, or the older `name.jpg#0<TAB>caption`;
- COCO's `captions_*.json` (`images` with `file_name`, `annotations` with `caption`).

All captions of one image are kept together in one item, so retrieval can count any of
them as a hit. Images are looked for in `root`, `root/Images`, `root/images` or, for COCO,
`root/<name>` of `captions_<name>.json`, whichever holds them.

Bad input (a missing or unreadable image, an empty caption, a malformed line) raises a
`DataError` that names the file and line; with `on_error="skip"` the item is left out
and one warning lists everything that was skipped (also in `ds.skipped`). Every image is
decoded once when the dataset is made (JPEGs at reduced size, a millisecond or two each),
so nothing fails half-way through training; `check_images=False` only checks that the
files exist, and an image that cannot be read then fails when its item is read.
"""

import csv
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from miniclip.data.seeding import keyed_rng

SPLITS = ("train", "val", "test", "all")
FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_path", "path")
CAPTION_COLUMNS = ("caption", "text")
CAPTION_FILES = ("captions.csv", "captions.jsonl", "captions.txt")


class DataError(ValueError):
    """Bad input data; the message starts with where it is: 'captions.csv line 7: ...'."""


class Problems:
    """Raises at the first problem, or (on_error="skip") collects them for one summary."""

    def __init__(self, on_error: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error is 'raise' or 'skip', not {on_error!r}")
        self.on_error = on_error
        self.found: list[str] = []

    def report(self, where: str, why: str) -> None:
        if self.on_error == "raise":
            raise DataError(f"{where}: {why}")
        self.found.append(f"{where}: {why}")

    def warn(self, kept: int) -> None:
        if self.found:
            listed = "\n  ".join(self.found)
            warnings.warn(
                f"skipped {len(self.found)} problem(s), kept {kept} images:\n  {listed}",
                stacklevel=3,
            )


# ----- caption files: each reader yields (file, caption, where) -----------------------------


def csv_rows(path: Path) -> Iterator[tuple[list[str], str]]:
    """(row, where it starts) for each row; broken quoting stops the file with its line."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, strict=True)
        while True:
            where = f"{path} line {reader.line_num + 1}"
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # the reader cannot go on past this
                raise DataError(f"{where}: malformed CSV ({error})") from error
            if row:
                yield row, where


def read_csv(path: Path, problems: Problems) -> Iterator[tuple[str, str, str]]:
    rows = csv_rows(path)
    header = [name.strip().lower() for name in next(rows, ([], ""))[0]]
    file_column = next((header.index(c) for c in FILE_COLUMNS if c in header), None)
    caption_column = next((header.index(c) for c in CAPTION_COLUMNS if c in header), None)
    if file_column is None or caption_column is None:
        raise DataError(
            f"{path} line 1: the header {header} needs a file column {FILE_COLUMNS} "
            f"and a caption column {CAPTION_COLUMNS}"
        )
    for row, where in rows:
        if len(row) != len(header):
            problems.report(where, f"expected {len(header)} fields, found {len(row)}")
            continue
        yield row[file_column], row[caption_column], where


def read_jsonl(path: Path, problems: Problems) -> Iterator[tuple[str, str, str]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            where = f"{path} line {number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problems.report(where, f"malformed JSON ({error.msg})")
                continue
            if not isinstance(record, dict):
                record = {}
            file = next((record[c] for c in FILE_COLUMNS if c in record), None)
            captions = record.get("captions", [record.get("caption", record.get("text"))])
            if not isinstance(file, str) or not isinstance(captions, list):
                problems.report(where, 'expected an object with "file" and "caption" or "captions"')
                continue
            for caption in captions:
                yield file, caption, where


def read_flickr(path: Path, problems: Problems) -> Iterator[tuple[str, str, str]]:
    """Flickr8k's captions.txt: CSV with header 'image,caption', or 'name.jpg#0<TAB>caption'."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    if "\t" not in first:
        yield from read_csv(path, problems)
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            where = f"{path} line {number}"
            if not line.strip():
                continue
            name, tab, caption = line.rstrip("\n").partition("\t")
            if not tab:
                problems.report(where, "expected 'image#n<TAB>caption'")
                continue
            yield name.split("#")[0], caption, where


def read_coco(path: Path, problems: Problems) -> Iterator[tuple[str, str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {image["id"]: image["file_name"] for image in data["images"]}
        annotations = data["annotations"]
    except json.JSONDecodeError as error:
        raise DataError(f"{path} line {error.lineno}: malformed JSON ({error.msg})") from error
    except (KeyError, TypeError) as error:
        raise DataError(f"{path}: not a COCO captions file (no {error})") from error
    for number, annotation in enumerate(annotations):
        where = f"{path} annotation {number}"
        if annotation.get("image_id") not in files:
            problems.report(
                where, f"image_id {annotation.get('image_id')!r} is not among the images"
            )
            continue
        yield files[annotation["image_id"]], annotation.get("caption"), where


def reader_for(path: Path):
    if path.suffix == ".csv":
        return read_csv
    if path.suffix == ".jsonl":
        return read_jsonl
    if path.suffix == ".json":
        return read_coco
    if path.suffix == ".txt":
        return read_flickr
    raise DataError(f"{path}: unknown caption layout (expected .csv, .jsonl, .txt or COCO .json)")


def find_caption_file(root: Path) -> Path:
    """The one caption file in `root` (or COCO's `root/annotations`)."""
    found = [root / name for name in CAPTION_FILES if (root / name).exists()]
    found += sorted(root.glob("captions_*.json")) + sorted(root.glob("annotations/captions_*.json"))
    if len(found) != 1:
        what = f"several: {[str(p) for p in found]}" if found else "none"
        raise DataError(
            f"{root}: found {what}; expected one caption file ({', '.join(CAPTION_FILES)} or COCO "
            "captions_*.json); name it with captions=..."
        )
    return found[0]


def resolve(root: Path, captions: Path) -> Path:
    """A caption file named absolutely, relative to the working directory, or inside `root`."""
    for path in (captions, root / captions):
        if path.is_file():
            return path
    raise DataError(f"{captions}: caption file not found (looked here and in {root})")


# ----- images ------------------------------------------------------------------------------


def image_folder(root: Path, caption_file: Path, files: list[str]) -> Path:
    """Where the images are: the first candidate folder that holds one of the first few files."""
    candidates = [root, root / "Images", root / "images"]
    if caption_file.name.startswith("captions_"):
        candidates.append(root / caption_file.stem.removeprefix("captions_"))  # COCO: train2017/
    sample = files[:20]
    return next((d for d in candidates if any((d / f).is_file() for f in sample)), root)


def check_image(path: Path) -> str | None:
    """Why the image cannot be used, or None. JPEGs decode at reduced size, which is quick."""
    if not path.is_file():
        return "missing file"
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            image.load()
    except Exception as error:  # Pillow's decoders raise many kinds
        return f"unreadable image ({type(error).__name__}: {error})"
    return None


def load_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except Exception as error:  # Pillow's decoders raise many kinds
        raise DataError(f"{path}: unreadable image ({type(error).__name__}: {error})") from error


# ----- the dataset -------------------------------------------------------------------------


def read_groups(caption_file: Path, problems: Problems) -> dict[str, tuple[str, list[str]]]:
    """{file: (where it is first named, [its captions])}, in order of first appearance."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for file, caption, where in reader_for(caption_file)(caption_file, problems):
        if not isinstance(caption, str) or not caption.strip():
            problems.report(where, f"empty caption for {file!r}")
            continue
        groups.setdefault(file, (where, []))[1].append(caption.strip())
    return groups


def split_indices(
    count: int, split: str, seed: int, val_fraction: float, test_fraction: float
) -> list[int]:
    order = keyed_rng(seed).permutation(count).tolist()
    n_test, n_val = round(test_fraction * count), round(val_fraction * count)
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
        "all": order,
    }
    return sorted(parts[split])


class CaptionFolder(Dataset):
    """Item i is (image i, all its captions); see the module docstring for layouts and errors."""

    def __init__(
        self,
        root: str | Path,
        captions: str | Path | None = None,
        split: str = "train",
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        on_error: str = "raise",
        check_images: bool = True,
    ):
        if split not in SPLITS:
            raise ValueError(f"folder has splits {SPLITS}, not {split!r}")
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: not a directory")
        caption_file = (
            find_caption_file(root) if captions is None else resolve(root, Path(captions))
        )
        problems = Problems(on_error)
        groups = read_groups(caption_file, problems)
        folder = image_folder(root, caption_file, list(groups))
        self.files, self.captions = [], []
        for file, (where, texts) in groups.items():
            path = folder / file
            why = (
                check_image(path) if check_images else (None if path.is_file() else "missing file")
            )
            if why:
                problems.report(where, f"{path}: {why}")
                continue
            self.files.append(path)
            self.captions.append(texts)
        problems.warn(kept=len(self.files))
        self.skipped = problems.found
        self.indices = split_indices(len(self.files), split, seed, val_fraction, test_fraction)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Image.Image, list[str]]:
        index = self.indices[i]
        return load_image(self.files[index]), list(self.captions[index])
