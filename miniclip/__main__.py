"""The command line: train, evaluate and export.

    python -m miniclip train --data shapes --preset tiny --out runs/shapes --minutes 5
    python -m miniclip evaluate runs/shapes
    python -m miniclip export runs/shapes --hf exported/shapes
    torchrun --nproc_per_node 2 -m miniclip train --data shapes --out runs/ddp --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from miniclip.config import PRESETS
from miniclip.image import AUGMENTATIONS

DATA = ["shapes", "fashion", "emoji", "folder"]


def data_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a data set lies and its options: for train, and for evaluate on other data."""
    parser.add_argument("--data-root", help="folder of the fashion or folder data set")
    parser.add_argument("--captions", help="caption file of a folder data set (CSV, JSONL, captions.txt, COCO json)")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the data set's class, e.g. background=mixed for shapes (repeatable)")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m miniclip", description="Train, evaluate and export a CLIP.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model; see chapter 09")
    train.add_argument("--data", default="shapes", choices=DATA)
    data_arguments(train)
    train.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    train.add_argument("--vision", choices=["vit", "resnet"], help="image encoder (resnet: the preset's ResNet twin)")
    train.add_argument("--out", default="runs/shapes-tiny", help="run folder: checkpoints, metrics, plots")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimizer steps (default 1000)")
    length.add_argument("--minutes", type=float, help="time budget; the step count is planned from the speed")
    train.add_argument("--batch-size", type=int, default=128, help="pairs per contrastive batch (per step)")
    train.add_argument("--accumulate", type=int, default=1,
                       help="micro-batches the batch goes through the model in: less memory, the same training")
    train.add_argument("--lr", type=float, default=1e-3, dest="learning_rate")
    train.add_argument("--weight-decay", type=float, default=0.1)
    train.add_argument("--warmup-steps", type=int, default=50)
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--vocab-size", type=int,
                       help="learn a BPE vocabulary of this size from the captions (default: OpenAI's)")
    train.add_argument("--augment", default="none", choices=AUGMENTATIONS,
                       help="training pictures: as they are, randomly cropped, or randomly zoomed, "
                       "turned and moved (miniclip.image.augment_image)")
    train.add_argument("--workers", type=int, default=0, help="DataLoader processes preparing batches")
    train.add_argument("--checkpoint-every", type=int, default=200)
    train.add_argument("--eval-every", type=int, default=100)
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    train.add_argument("--evaluate", action="store_true", help="evaluate when training ends")

    evaluate = commands.add_parser("evaluate", help="measure a run; writes RUN_DIR/eval.json")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data", choices=DATA, help="another data set than the one trained on")
    data_arguments(evaluate)
    evaluate.add_argument("--limit", type=int, help="at most this many images per measurement "
                          "(default: zero-shot on its whole split, retrieval on the first 1,000)")
    evaluate.add_argument("--device", default="cpu")

    export = commands.add_parser("export", help="write a folder that transformers loads")
    export.add_argument("run_dir")
    export.add_argument("--hf", required=True, help="output folder")
    return parser.parse_args(argv)


# --vision resnet: the ResNet that stands for a ViT preset (the paper pairs ViT-B/32 with RN50)
RESNET_TWINS = {"tiny": "tiny-resnet", "vit-b-32": "rn50"}

# What a user can get wrong (a setting, a path, a run folder); the message says what and
# where. MINICLIP_TRACEBACK=1 shows the whole traceback instead, should one come from a bug.
USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return run(args)
    except USER_ERRORS as error:
        if os.environ.get("MINICLIP_TRACEBACK", "0") != "0":
            raise
        print(f"miniclip {args.command}: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    if args.command == "train":
        return run_train(args)
    if args.command == "evaluate":
        from miniclip.evaluate import evaluate_run, results_json

        options = data_set_options(args)
        print(results_json(evaluate_run(args.run_dir, args.data, args.limit, args.device, options)))
        return 0
    from miniclip.export import export_run

    print(f"wrote {export_run(args.run_dir, args.hf)}")
    return 0


def data_options(pairs: list[str]) -> dict:
    """["background=mixed", "length=500"] -> {"background": "mixed", "length": 500}: values read as JSON
    where they are JSON (numbers, true, null), as text otherwise."""
    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not (equals and key.strip()):
            raise ValueError(f"--data-option {pair!r}: write KEY=VALUE, as in length=500")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def data_set_options(args: argparse.Namespace) -> dict:
    """--data-option, --data-root and --captions as one dict of the data set's options."""
    options = data_options(args.data_option)
    if args.data_root:
        options["root"] = args.data_root
    if args.captions:
        options["captions"] = args.captions
    return options


def run_train(args: argparse.Namespace) -> int:
    from miniclip.train import TrainConfig, train

    options = data_set_options(args)
    preset = args.preset
    if args.vision == "resnet" and preset not in RESNET_TWINS.values():
        if preset not in RESNET_TWINS:
            raise ValueError(f"--vision resnet: the preset {preset!r} has no ResNet twin; "
                             f"the twins are {RESNET_TWINS}")
        preset = RESNET_TWINS[preset]
    if args.vision == "vit" and preset in RESNET_TWINS.values():
        raise ValueError(f"--vision vit: the preset {preset!r} is a ResNet; its ViT twin is "
                         f"{next(vit for vit, resnet in RESNET_TWINS.items() if resnet == preset)!r}")
    config = TrainConfig(
        data=args.data, preset=preset, out=args.out, steps=args.steps, minutes=args.minutes,
        batch_size=args.batch_size, accumulate=args.accumulate, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, precision=args.precision,
        compile=args.compile, device=args.device, seed=args.seed, workers=args.workers,
        vocab_size=args.vocab_size, augment=args.augment,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, data_options=options,
    )
    try:
        run_dir = train(config, resume=args.resume)
    except KeyboardInterrupt:
        return 130
    if args.evaluate and os.environ.get("RANK", "0") == "0":  # under torchrun, one process measures
        from miniclip.evaluate import evaluate_run, results_json

        print(results_json(evaluate_run(run_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
