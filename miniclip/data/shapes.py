"""Procedural shapes: coloured shapes on a dark, noisy background, with captions that describe them.

Chapter 08 ("Caption data") builds it; chapters 09-12 train and test on it. Nothing is
stored: item `i` of a split is drawn from a generator keyed by (seed, split, i), so any
DataLoader worker makes the same scene, at any image size.

A scene holds one to three shapes, each with a colour, a kind, a size and a cell of a
3 x 3 grid; its captions say so in several ways ("a small red circle in the top left",
"a blue square to the right of a yellow star"). Splits:

- "train", "val": scenes of one to three shapes, never of a held-out colour-shape pair;
- "test": one shape of a held-out pair per image: true zero-shot classification, since
  no training image or caption ever shows, say, a red star;
- "test_seen": one shape of a pair seen in training, the same task for comparison;
- "relations": two shapes in one row or column, captioned by their relation; `contrast(i)`
  gives the same caption with the relation or the colours swapped, a false caption that
  only a model which binds colours to shapes and shapes to places can tell apart.

`Shapes(..., background="mixed")` draws the same scenes on grounds of any grey from dark to
light, so that a shape is lighter than one ground and darker than the next (see `render`).
"""

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from miniclip.data.english import listing, with_article
from miniclip.data.seeding import keyed_rng

# Light colours, no channel below 100: on the dark ground (see `render`) every shape stands
# out in all three channels, so its kind shows the same way in every colour.
COLOURS = {
    "red": (229, 115, 115),
    "orange": (245, 177, 102),
    "yellow": (242, 229, 112),
    "green": (115, 196, 128),
    "blue": (115, 145, 229),
    "purple": (180, 125, 209),
}
# Kinds that differ at the size they are drawn (a radius of 7 to 10 pixels at 72): a
# hexagon, tried first, was too often taken for a circle, even in pairs seen in training.
KINDS = ("circle", "square", "triangle", "star", "cross", "diamond")

# One held-out kind per colour and one colour per kind: every word is seen in training,
# but never these combinations.
HELD_OUT_PAIRS = (
    ("red", "star"),
    ("orange", "circle"),
    ("yellow", "diamond"),
    ("green", "triangle"),
    ("blue", "cross"),
    ("purple", "square"),
)
SEEN_PAIRS = tuple(
    (colour, kind) for colour in COLOURS for kind in KINDS if (colour, kind) not in HELD_OUT_PAIRS
)
CLASSNAMES = [f"{colour} {kind}" for colour in COLOURS for kind in KINDS]
TEMPLATES = [
    "a photo of the {}.",
    "the {} on a noisy background.",
    "a drawing of the {}.",
    "a picture of the {}.",
    "the {}.",
]

SPLITS = ("train", "val", "test", "test_seen", "relations")
SIZES = {"small": (0.095, 0.11), "large": (0.13, 0.145)}  # radius, as a fraction of the image
WHERE = (
    ("in the top left", "at the top", "in the top right"),
    ("on the left", "in the middle", "on the right"),
    ("in the bottom left", "at the bottom", "in the bottom right"),
)
OPPOSITE = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
}


@dataclass(frozen=True)
class Shape:
    """One shape of a scene: what it is and where it sits on the 3 x 3 grid."""

    colour: str  # a name of COLOURS, or "#rrggbb" for a shape drawn in another colour
    kind: str
    size: str  # "small" or "large"
    row: int  # 0 (top) to 2 (bottom)
    col: int  # 0 (left) to 2 (right)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    @property
    def where(self) -> str:
        return WHERE[self.row][self.col]

    def relations_to(self, other: "Shape") -> list[str]:
        """Every relation word that is true of `self` with respect to `other`."""
        relations = []
        if self.col != other.col:
            relations.append("to the left of" if self.col < other.col else "to the right of")
        if self.row != other.row:
            relations.append("above" if self.row < other.row else "below")
        return relations


def pick(rng: np.random.Generator, options: list | tuple):
    return options[int(rng.integers(len(options)))]


# ----- scenes: which shapes, where ----------------------------------------------------------


def random_scene(rng: np.random.Generator, pairs: tuple, count: int) -> list[Shape]:
    """`count` distinct colour-shape pairs from `pairs`, each in its own grid cell."""
    chosen = rng.choice(len(pairs), size=count, replace=False)
    cells = rng.choice(9, size=count, replace=False)
    return [
        Shape(*pairs[p], pick(rng, list(SIZES)), int(cell) // 3, int(cell) % 3)
        for p, cell in zip(chosen, cells)
    ]


def relation_scene(rng: np.random.Generator) -> tuple[list[Shape], str]:
    """Two shapes of different colours and kinds in one row or column, and their relation."""
    while True:
        (c1, k1), (c2, k2) = (SEEN_PAIRS[p] for p in rng.choice(len(SEEN_PAIRS), 2, replace=False))
        if c1 != c2 and k1 != k2:
            break
    relation = pick(rng, list(OPPOSITE))
    line, (first, second) = int(rng.integers(3)), sorted(rng.choice(3, 2, replace=False))
    if relation in ("to the right of", "below"):
        first, second = second, first
    horizontal = relation in ("to the left of", "to the right of")
    cell_a, cell_b = (
        ((line, first), (line, second)) if horizontal else ((first, line), (second, line))
    )
    a = Shape(c1, k1, pick(rng, list(SIZES)), *map(int, cell_a))
    b = Shape(c2, k2, pick(rng, list(SIZES)), *map(int, cell_b))
    return [a, b], relation


# ----- captions ---------------------------------------------------------------------------


def describe(shape: Shape, size: bool = False, where: bool = False) -> str:
    words = f"{shape.size} {shape.name}" if size else shape.name
    return with_article(words) + (f" {shape.where}" if where else "")


def relation_caption(rng: np.random.Generator, shapes: list[Shape]) -> str:
    a, b = (shapes[i] for i in rng.choice(len(shapes), 2, replace=False))
    return f"{describe(a)} {pick(rng, a.relations_to(b))} {describe(b)}"


def scene_captions(rng: np.random.Generator, shapes: list[Shape]) -> list[str]:
    """Several true captions, the most complete first."""
    order = [shapes[i] for i in rng.permutation(len(shapes))]
    full = listing([describe(s, size=True, where=True) for s in order])
    if len(shapes) == 1:
        (shape,) = shapes
        return [
            full,
            describe(shape),
            describe(shape, where=True),
            describe(shape, size=True),
            pick(rng, TEMPLATES).format(shape.name),
        ]
    count = "two" if len(shapes) == 2 else "three"
    return [
        full,
        listing([describe(s) for s in order]),
        f"{count} shapes: " + listing([describe(s, size=True) for s in order]),
        relation_caption(rng, shapes),
    ]


# ----- pixels -----------------------------------------------------------------------------


def regular_polygon(radii: list[float], start: float) -> np.ndarray:
    """Corners at equal angles from `start` (in turns), at the given radii; (n, 2)."""
    theta = 2 * np.pi * (start + np.arange(len(radii)) / len(radii))
    return np.stack([np.cos(theta), np.sin(theta)], axis=1) * np.asarray(radii)[:, None]


def plus_sign(arm: float, half: float) -> np.ndarray:
    """The 12 corners of a plus sign: three for the top arm, then the same turned three times."""
    top = np.array([(-half, -arm), (half, -arm), (half, -half)])
    quarter_turn = np.array([[0, 1], [-1, 0]])  # (x, y) -> (-y, x)
    return np.concatenate([top @ np.linalg.matrix_power(quarter_turn, k) for k in range(4)])


POLYGONS = {  # corners of each kind at radius 1, y pointing down as in images
    "square": regular_polygon([1.25] * 4, 1 / 8),
    "triangle": regular_polygon([1.3] * 3, -1 / 4),
    "diamond": regular_polygon([1.3, 0.75] * 2, -1 / 4),  # taller than wide
    "star": regular_polygon([1.3, 0.55] * 5, -1 / 4),
    "cross": plus_sign(arm=1.1, half=0.4),
}


def corners(
    kind: str, x: float, y: float, radius: float, angle: float
) -> list[tuple[float, float]]:
    """Corners of a shape of about `radius` centred at (x, y), turned by `angle` radians."""
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]])
    corners = POLYGONS[kind] @ rotation * radius + (x, y)  # (n, 2)
    return [tuple(corner) for corner in corners.tolist()]


def rgb(colour: str) -> tuple[int, int, int]:
    """A colour's red, green and blue: one of `COLOURS` by name, or any colour as "#rrggbb"."""
    if colour in COLOURS:
        return COLOURS[colour]
    if len(colour) == 7 and colour.startswith("#"):
        try:
            return tuple(int(colour[k : k + 2], 16) for k in (1, 3, 5))
        except ValueError:
            pass
    raise ValueError(f"colour {colour!r} is neither one of {list(COLOURS)} nor a code like '#a0c814'")


# The grey of the ground, drawn from one of these ranges (0-255) before a tint of up to 15
# per channel. "dark" lies well below every channel of every named colour, so a shape
# always stands out lighter than its ground; "mixed" spans dark to light grey.
BACKGROUNDS = {"dark": (10, 40), "mixed": (40, 190)}


def check_background(background: str) -> None:
    if background not in BACKGROUNDS:
        raise ValueError(f"shapes: background is one of {list(BACKGROUNDS)}, not {background!r}")


def draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, rng: np.random.Generator, size: int):
    """Draw `shape` in its cell of the 3 x 3 grid, a little moved, resized and turned."""
    cell = size / 3
    radius = rng.uniform(*SIZES[shape.size]) * size
    # Keep the shape inside its cell: a polygon's corners lie up to 1.3 radii out, so the
    # tips of the largest stars, triangles and diamonds, centred, reach 0.02 of the image
    # (1.6 pixels at 72) past it.
    slack = max(cell / 2 - radius * 1.3, 0.0)
    x = (shape.col + 0.5) * cell + rng.uniform(-slack, slack)
    y = (shape.row + 0.5) * cell + rng.uniform(-slack, slack)
    jitter = rng.integers(-15, 16, 3).tolist()
    colour = tuple(min(max(c + j, 0), 255) for c, j in zip(rgb(shape.colour), jitter))
    if shape.kind == "circle":
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    else:
        angle = rng.uniform(-np.pi / 12, np.pi / 12)
        draw.polygon(corners(shape.kind, x, y, radius, angle), fill=colour)


def render(rng: np.random.Generator, shapes: list[Shape], size: int,
           background: str = "dark") -> Image.Image:
    """Shapes on a greyish ground, then pixel noise over everything.

    The ground matters to what a model learns (chapter 10). On a "dark" one every shape of
    a named colour is lighter than its ground in all three channels, so a kind looks alike
    in every colour: a light patch of its form. On a "mixed" one a red star is lighter than
    a dark ground, but darker than a light one in green and blue, and a model that learnt
    stars in five colours may not know one in the sixth.
    """
    check_background(background)
    ground = rng.uniform(*BACKGROUNDS[background]) + rng.uniform(-15, 15, 3)
    image = Image.new("RGB", (size, size), tuple(int(c) for c in ground))
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        draw_shape(draw, shape, rng, size)
    noise = rng.standard_normal((size, size, 3), dtype=np.float32) * rng.uniform(4, 24)
    pixels = np.asarray(image, dtype=np.float32) + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# ----- the dataset ------------------------------------------------------------------------


class Shapes(Dataset):
    """Item i is (image, captions); see the module docstring for the splits."""

    classnames = CLASSNAMES
    templates = TEMPLATES

    def __init__(
        self, split: str = "train", seed: int = 0, image_size: int = 64, length: int | None = None,
        cache: bool = False, background: str = "dark",
    ):
        """`cache=True` keeps each item once made (its image, 3 * image_size**2 bytes, and
        its captions): a training run draws every scene once instead of once per epoch.
        `background` is "dark" or "mixed" (see `render`); the scenes and captions are the
        same on either."""
        if split not in SPLITS:
            raise ValueError(f"shapes has splits {SPLITS}, not {split!r}")
        check_background(background)
        self.split, self.seed, self.image_size = split, seed, image_size
        self.background = background
        self.length = length if length is not None else (10_000 if split == "train" else 1_000)
        self.cache: dict[int, tuple[np.ndarray, tuple[str, ...]]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Image.Image, list[str]]:
        if self.cache is not None and i in self.cache:
            pixels, captions = self.cache[i]
            return Image.fromarray(pixels), list(captions)
        shapes = self.scene(i)
        if self.split == "relations":
            captions = self.relation_captions(i)
        else:
            captions = scene_captions(self.rng(i, "captions"), shapes)
        image = self.draw(i, shapes)
        if self.cache is not None:
            self.cache[i] = (np.asarray(image), tuple(captions))
        return image, captions

    def draw(self, i: int, shapes: list[Shape]) -> Image.Image:
        return render(self.rng(i, "pixels"), shapes, self.image_size, self.background)

    def rng(self, i: int, purpose: str) -> np.random.Generator:
        if not 0 <= i < self.length:
            raise IndexError(f"item {i} of a shapes split of length {self.length}")
        purposes = ("scene", "captions", "pixels")
        return keyed_rng(self.seed, SPLITS.index(self.split), i, purposes.index(purpose))

    def scene(self, i: int) -> list[Shape]:
        """The shapes of item i, without drawing them."""
        rng = self.rng(i, "scene")
        if self.split == "relations":
            return relation_scene(rng)[0]
        if self.split == "test":
            return random_scene(rng, HELD_OUT_PAIRS, 1)
        if self.split == "test_seen":
            return random_scene(rng, SEEN_PAIRS, 1)
        return random_scene(rng, SEEN_PAIRS, int(rng.integers(1, 4)))

    def label(self, i: int) -> int:
        """Index into `classnames` of the one shape of item i (splits "test" and "test_seen")."""
        if self.split not in ("test", "test_seen"):
            raise ValueError(
                f"label() needs a one-shape split ('test', 'test_seen'), not {self.split!r}"
            )
        return CLASSNAMES.index(self.scene(i)[0].name)

    def relation_captions(self, i: int) -> list[str]:
        (a, b), relation = self.relation(i)
        return [
            f"{describe(a)} {relation} {describe(b)}",
            f"{describe(b)} {OPPOSITE[relation]} {describe(a)}",
        ]

    def relation(self, i: int) -> tuple[list[Shape], str]:
        if self.split != "relations":
            raise ValueError(f"relations exist in the 'relations' split, not {self.split!r}")
        return relation_scene(self.rng(i, "scene"))

    def contrast(self, i: int, swap: str = "relation") -> str:
        """A false caption for relations item i: its first caption, relation or colours swapped."""
        (a, b), relation = self.relation(i)
        if swap == "relation":
            return f"{describe(a)} {OPPOSITE[relation]} {describe(b)}"
        if swap == "colours":
            a, b = replace(a, colour=b.colour), replace(b, colour=a.colour)
            return f"{describe(a)} {relation} {describe(b)}"
        raise ValueError(f"swap is 'relation' or 'colours', not {swap!r}")
