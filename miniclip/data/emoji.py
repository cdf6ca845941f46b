"""Emoji with their Unicode names and keywords: a small real caption dataset for retrieval.

Chapter 08 ("Caption data") builds it; the README's results table measures retrieval on
its held-out emoji, and `benchmarks/emoji_breakdown.py` splits that figure by kind of
emoji. The pictures (Noto Color Emoji, 48 x 48) and the human-written names and keywords
(Unicode CLDR) ship as one pack in `data/emoji/`, rebuilt by `scripts/build_emoji_pack.py`;
`data/emoji/LICENSE.md` gives their licences.

Item i is (image, captions), the captions all about one emoji: its name, "an emoji of
a grinning face", "the grinning face emoji" and, where CLDR has keywords beyond the
name, "an emoji for grin and smile". Split "test" holds out a seeded `test_fraction` of
the emoji, never seen in "train".

`second_design=DIR` adds to "train" a second picture of each training emoji that DIR
holds, by another artist: PNG files named by code points as Twemoji's are (`1f600.png`,
`1f468-200d-1f393.png`). None ships with miniclip; `docs/RESULTS.md` says where to get
Twemoji's and what they change. The test split stays the pack's pictures.
"""

import json
import re
from functools import cache
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from miniclip.data.english import listing, with_article
from miniclip.data.seeding import keyed_rng

PACK = Path(__file__).resolve().parents[2] / "data" / "emoji"
SPLITS = ("train", "test")
IRREGULAR_PLURALS = {"men", "women", "people", "children"}


@cache
def read_pack(directory: Path = PACK) -> tuple[dict, Image.Image]:
    """The pack's index and its sheet of pictures, read once per process."""
    index, sheet = directory / "emoji.json", directory / "emoji.jpg"
    if not (index.exists() and sheet.exists()):
        raise FileNotFoundError(
            f"the emoji pack is missing from {directory}: it ships with the miniclip repository; "
            "rebuild it with `python scripts/build_emoji_pack.py`"
        )
    pack = json.loads(index.read_text(encoding="utf-8"))
    with Image.open(sheet) as picture:
        return pack, picture.convert("RGB")


def noun_phrase(name: str) -> str:
    """'grinning face' -> 'a grinning face'; 'raised hands' stays; 'flag: X' -> 'the flag of X'."""
    if name.startswith("flag: "):
        return "the flag of " + name.removeprefix("flag: ")
    words = re.split(r" (?:with|of|in|on|up|at) ", name)[0].split()  # 'face with tears of joy'
    end = next((k for k, word in enumerate(words) if k > 0 and word.endswith("ing")), len(words))
    head = words[end - 1]  # 'face' in 'face holding back tears'
    plural = head in IRREGULAR_PLURALS or (
        head.endswith("s") and not head.endswith(("ss", "us", "is"))
    )
    return name if plural else with_article(name)


# Names that start with an adjective or a verb, not a noun: "an emoji for foggy", since
# "an emoji of a foggy" is not English.
NOT_NOUNS = {
    "bowling", "breast-feeding", "camping", "cooking", "dizzy", "foggy", "locked", "multiply",
    "prohibited", "radioactive", "registered", "unlocked",
}


def captions_for(name: str, keywords: list[str]) -> list[str]:
    """The name first, then sentences made from it and from the keywords it does not contain."""
    name_words = set(name.lower().replace(":", "").split())
    extra = [k for k in keywords if k.lower() not in name_words]
    described = (f"an emoji for {name}" if name.split()[0] in NOT_NOUNS
                 else f"an emoji of {noun_phrase(name)}")
    captions = [
        name,
        described,
        f"the {name.replace('flag: ', 'flag of ')} emoji",
    ]
    if extra:
        captions.append(f"an emoji for {listing(extra[:4])}")
    return captions


class Emoji(Dataset):
    """Emoji pictures with their names; see the module docstring."""

    def __init__(self, split: str = "train", seed: int = 0, test_fraction: float = 0.1,
                 second_design: str | None = None):
        if split not in SPLITS:
            raise ValueError(f"emoji has splits {SPLITS}, not {split!r}")
        pack, self.sheet = read_pack()
        self.tile, self.columns = pack["tile"], pack["columns"]
        self.entries = pack["emoji"]
        order = keyed_rng(seed).permutation(len(self.entries)).tolist()
        held_out = round(test_fraction * len(order))
        self.indices = sorted(order[:held_out] if split == "test" else order[held_out:])
        self.second: list[tuple[int, Image.Image]] = []  # (index, picture), after the pack's
        if second_design is not None and split == "train":
            self.second = second_pictures(Path(second_design), self.indices, self.entries, self.tile)

    def __len__(self) -> int:
        return len(self.indices) + len(self.second)

    def __getitem__(self, i: int) -> tuple[Image.Image, list[str]]:
        if i >= len(self.indices):
            index, image = self.second[i - len(self.indices)]
        else:
            index = self.indices[i]
            left, top = (index % self.columns) * self.tile, (index // self.columns) * self.tile
            image = self.sheet.crop((left, top, left + self.tile, top + self.tile))
        entry = self.entries[index]
        return image, captions_for(entry["name"], entry["keywords"])

    def emoji(self, i: int) -> str:
        """The emoji character(s) of item i, to print beside a retrieval result."""
        index = self.indices[i] if i < len(self.indices) else self.second[i - len(self.indices)][0]
        return self.entries[index]["emoji"]


def code_points(emoji: str, selectors: bool) -> str:
    """'👨‍🎓' -> '1f468-200d-1f393': a picture's file name, with or without U+FE0F selectors."""
    return "-".join(f"{ord(c):x}" for c in emoji if selectors or c != "\ufe0f")


def second_pictures(folder: Path, indices: list[int], entries: list[dict],
                    tile: int) -> list[tuple[int, Image.Image]]:
    """(index, picture on white, tile x tile) for each of `indices` that `folder` draws."""
    from miniclip.image import to_rgb  # miniclip.image imports this package

    if not folder.is_dir():
        raise FileNotFoundError(f"emoji option second_design: no folder {folder}")
    files = {path.stem.lower(): path for path in folder.glob("*.png")}
    pictures = []
    for index in indices:
        emoji = entries[index]["emoji"]
        path = files.get(code_points(emoji, True)) or files.get(code_points(emoji, False))
        if path is not None:
            with Image.open(path) as picture:
                on_white = to_rgb(picture)
            pictures.append((index, on_white.resize((tile, tile), Image.Resampling.LANCZOS)))
    if not pictures:
        raise ValueError(f"emoji option second_design: no PNG in {folder} is named by an emoji's "
                         "code points, as 1f600.png (grinning face) or 1f468-200d-1f393.png")
    return pictures
