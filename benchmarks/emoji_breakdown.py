"""Which held-out emoji can a model trained on the others find? Image-to-text recall@5, by group.

The emoji test split holds out a random tenth of the emoji. Many of them are things no
training emoji shows and words no training caption has ("beaver", "flag: Niue"); others
differ from a training emoji in one word of their name ("man student" when "woman
student" is in training). This splits the held-out emoji into

- flags ("flag: Italy"),
- near: another name word for word but one, among the training emoji,
- new: the rest,

and gives each group's image-to-text recall@5, measured as `python -m miniclip evaluate`
does (among all captions of all held-out emoji; a hit when any of the emoji's own captions
is among the 5 nearest). A last line counts emoji instead of captions: each emoji scored
by its best caption, so that one emoji's three or four captions cannot fill the top 5
(never lower than the figure above).

    python benchmarks/emoji_breakdown.py runs/results/emoji-tiny
    python benchmarks/emoji_breakdown.py --pixels --seed 0   # no model: the baseline below
    python benchmarks/emoji_breakdown.py runs/results/emoji-tiny --model-neighbours

`--pixels` measures the same recall with no model and no training, as a yardstick of what
the training split can teach about the held-out one: each held-out picture's `--neighbours`
nearest training pictures, pixel for pixel, vote for the held-out captions that share
words with their captions, rare words counting more (`miniclip.evaluate.neighbour_votes`).
`--model-neighbours` holds the votes but lets the run's image tower pick the neighbours
(the cosine of its image features) instead of the pixels: whether the pictures the trained
tower finds alike say more about a held-out picture's words than the pictures alike pixel
for pixel.
"""

from __future__ import annotations

import argparse

import torch

from miniclip import ImageProcessor
from miniclip.data import load_dataset
from miniclip.evaluate import Encoder, caption_pool, captions_found, load_run, neighbour_votes


def words(name: str) -> set[str]:
    return set(name.lower().replace(":", "").split())


def group(name: str, training_names: list[set[str]]) -> str:
    if name.startswith("flag: "):
        return "flags"
    mine = words(name)
    near = any(len(mine & other) >= len(mine) - 1 and len(other - mine) <= 1 and other != mine
               for other in training_names)
    return "near" if near and len(mine) > 1 else "new"


def best_caption_scores(similarity: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
    """(images, texts) scores -> (images, emoji): each emoji's best caption's score."""
    best = torch.full((similarity.size(0), int(owners.max()) + 1), float("-inf"))
    return best.scatter_reduce(1, owners.expand_as(similarity), similarity, reduce="amax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="an emoji training run (omit with --pixels)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--pixels", action="store_true", help="the no-model baseline instead")
    parser.add_argument("--neighbours", type=int, default=5, help="training pictures that vote")
    parser.add_argument("--model-neighbours", action="store_true", help="with a run folder: its "
                        "image tower picks the training pictures that vote, instead of the pixels")
    parser.add_argument("--seed", type=int, help="the split, with --pixels (default 0; a run "
                        "folder brings its own)")
    args = parser.parse_args()
    if (args.run_dir is None) != args.pixels:
        parser.error("give a run folder or --pixels, one of the two")
    if args.model_neighbours and args.run_dir is None:
        parser.error("--model-neighbours needs a run folder: its image tower picks the neighbours")
    if args.run_dir is not None and args.seed is not None:
        parser.error(f"{args.run_dir} was trained on the split of its own seed; --seed goes with --pixels")
    options = {}  # a run's data options (a second design of the training emoji, say)
    if args.pixels:
        seed = 0 if args.seed is None else args.seed
        title = f"nearest {args.neighbours} training pictures, seed {seed}"
    else:
        model, tokenizer, settings = load_run(args.run_dir)
        if settings["data"] != "emoji":
            raise SystemExit(f"{args.run_dir} was trained on {settings['data']!r}, not emoji")
        encoder = Encoder(model.eval(), tokenizer, ImageProcessor(model.config.vision.image_size))
        seed, title, options = settings["seed"], args.run_dir, settings["data_options"]
        if args.model_neighbours:
            title += f", its nearest {args.neighbours} training pictures voting"
    train = load_dataset("emoji", split="train", seed=seed, **options)
    test = load_dataset("emoji", split="test", seed=seed, **options)
    training_names = [words(train[i][1][0]) for i in range(len(train))]

    images, texts, owners = caption_pool(test)
    groups = [group(test[i][1][0], training_names) for i in range(len(test))]  # caption 0: the name
    if args.pixels:
        similarity = neighbour_votes(train, images, texts, args.neighbours)
    elif args.model_neighbours:
        with torch.no_grad():
            alike = encoder.images(images) @ encoder.images([train[i][0] for i in range(len(train))]).t()
        similarity = neighbour_votes(train, images, texts, args.neighbours, similarity=alike)
    else:
        with torch.no_grad():
            similarity = encoder.images(images) @ encoder.texts(texts).t()
    hit = captions_found(similarity, owners, args.k)

    print(f"{title}: held-out emoji, image-to-text recall@{args.k}")
    for name in ("near", "new", "flags"):
        members = torch.tensor([g == name for g in groups])
        if members.any():
            print(f"  {name:6} {int(members.sum()):4} emoji  {hit[members].float().mean().item():.3f}")
    print(f"  {'all':6} {len(images):4} emoji  {hit.float().mean().item():.3f}")
    by_emoji = best_caption_scores(similarity, owners)
    print("  emoji by their best caption: recall@1, 5, 10 " + ", ".join(
        f"{captions_found(by_emoji, torch.arange(len(images)), k).float().mean().item():.3f}" for k in (1, 5, 10)))


if __name__ == "__main__":
    main()
