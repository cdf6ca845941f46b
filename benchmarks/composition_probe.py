"""Does the image tower's shape recognition carry over to colour-shape pairs it never saw?

The shapes data holds out six colour-shape pairs (no red star in training, ...), and
zero-shot accuracy on them lags behind the seen pairs: when the model is wrong, it names
the colour right and a seen kind instead. This probe asks whether the image tower alone
is to blame. It takes the tiny preset's image tower, puts a linear head on it and trains it
with kind labels (no text at all) on one-shape images of the seen pairs, then reports
kind accuracy on new images of seen pairs and of held-out pairs.

    python benchmarks/composition_probe.py                        # 3 seeds
    python benchmarks/composition_probe.py --background mixed     # dark to light grounds
    python benchmarks/composition_probe.py --unnamed-colours 0.3  # 30% of training shapes
                                                                  # in random other colours

With --unnamed-colours P, a share P of the training shapes is drawn in a random colour at
least --distance away (RGB, 0-255 per channel) from each of the six named colours, so
that no colour comes close to a held-out pair's. Two more options take colour away from
the tower, to see how much of the gap it explains: --grey shows it every image (training
and test) in shades of grey, and --shade S draws each shape of a named colour lighter or
darker by up to S (0.5: halfway to white or to black), so that lightness no longer tells
the colour. --background mixed draws every image (training and test) on a ground of any
grey from dark to light, instead of the data's dark one, so that a shape is lighter than
one ground and darker than the next (see miniclip.data.shapes.render).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from miniclip import CLIP, CLIPConfig, ImageProcessor
from miniclip.data import shapes
from miniclip.data.seeding import keyed_rng

BATCH = 128


def far_colour(rng: np.random.Generator, distance: float) -> str:
    """A random colour at least `distance` from every named colour, as '#rrggbb'."""
    named = np.array(list(shapes.COLOURS.values()), dtype=float)
    while True:
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(named - colour, axis=1).min() >= distance:
            return "#" + "".join(f"{int(c):02x}" for c in colour)


def shaded(rng: np.random.Generator, colour: str, shade: float) -> str:
    """`colour` moved a random share, up to `shade`, of the way to white or to black."""
    value = np.array(shapes.rgb(colour), dtype=float)
    t = rng.uniform(-shade, shade)
    value = value * (1 + t) if t < 0 else value + (255 - value) * t
    return "#" + "".join(f"{c:02x}" for c in value.round().astype(int).tolist())


def one_shape_images(pairs: tuple, count: int, seed: int, image_size: int, unnamed: float = 0.0,
                     distance: float = 100.0, grey: bool = False, shade: float = 0.0,
                     background: str = "dark") -> tuple[torch.Tensor, torch.Tensor]:
    """`count` images of one shape each, from `pairs`, as pixel values, and their kinds."""
    rng = keyed_rng(seed)
    images, kinds = [], []
    for _ in range(count):
        (shape,) = shapes.random_scene(rng, pairs, 1)
        if rng.random() < unnamed:
            shape = replace(shape, colour=far_colour(rng, distance))
        elif shade:
            shape = replace(shape, colour=shaded(rng, shape.colour, shade))
        image = shapes.render(rng, [shape], image_size, background)
        images.append(image.convert("L").convert("RGB") if grey else image)
        kinds.append(shapes.KINDS.index(shape.kind))
    return ImageProcessor(image_size)(images)["pixel_values"], torch.tensor(kinds)


def probe(seed: int, args: argparse.Namespace) -> tuple[float, float]:
    """Train on seen pairs; kind accuracy on (seen pairs, held-out pairs)."""
    config = CLIPConfig.preset(args.preset)
    size = config.vision.image_size
    colour = {"grey": args.grey, "shade": args.shade, "background": args.background}
    train_x, train_y = one_shape_images(shapes.SEEN_PAIRS, args.images, seed, size,
                                        args.unnamed_colours, args.distance, **colour)
    seen_x, seen_y = one_shape_images(shapes.SEEN_PAIRS, 600, 10_000 + seed, size, **colour)
    held_x, held_y = one_shape_images(shapes.HELD_OUT_PAIRS, 600, 20_000 + seed, size, **colour)
    torch.manual_seed(seed)
    tower = CLIP(config).vision_model
    with torch.no_grad():
        width = tower(train_x[:1]).pooler_output.shape[-1]  # a ViT's hidden size, a ResNet's pool
    head = nn.Linear(width, len(shapes.KINDS))
    optimizer = torch.optim.AdamW([*tower.parameters(), *head.parameters()], lr=args.lr)
    order = torch.Generator().manual_seed(seed)
    for _ in range(args.steps):
        batch = torch.randint(0, len(train_x), (BATCH,), generator=order)
        loss = F.cross_entropy(head(tower(train_x[batch]).pooler_output), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        tower.eval()
        seen = (head(tower(seen_x).pooler_output).argmax(1) == seen_y).float().mean().item()
        held = (head(tower(held_x).pooler_output).argmax(1) == held_y).float().mean().item()
    return seen, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--images", type=int, default=3000, help="training images")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--unnamed-colours", type=float, default=0.0,
                        help="share of training shapes drawn in colours far from the named ones")
    parser.add_argument("--distance", type=float, default=100.0)
    parser.add_argument("--grey", action="store_true", help="every image in shades of grey")
    parser.add_argument("--shade", type=float, default=0.0,
                        help="named colours drawn lighter or darker by up to this share")
    parser.add_argument("--background", choices=list(shapes.BACKGROUNDS), default="dark",
                        help="the ground under the shapes (the data's default: dark)")
    args = parser.parse_args()
    print(f"{args.preset} image tower, kind labels, {args.steps} steps of {BATCH}, "
          f"unnamed colours {args.unnamed_colours:.0%}, grey {args.grey}, shade {args.shade}, "
          f"background {args.background}")
    results = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        seen, held = probe(seed, args)
        results.append((seen, held))
        print(f"seed {seed}: kind accuracy, seen pairs {seen:.3f}, held-out pairs {held:.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    seen, held = np.mean(results, axis=0)
    print(f"mean over {args.seeds} seeds: seen pairs {seen:.3f}, held-out pairs {held:.3f}")


if __name__ == "__main__":
    main()
