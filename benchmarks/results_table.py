"""Train and evaluate on each built-in dataset and print the README's results table.

    python benchmarks/results_table.py                   # 5 minutes each, this machine
    python benchmarks/results_table.py --minutes 1 --data shapes
    python benchmarks/results_table.py --preset small --device cuda --minutes 2
    python benchmarks/results_table.py --data shapes --seeds 0 1 2   # how much a seed moves it
    python benchmarks/results_table.py --steps 2 -- --batch-size 8   # a quick try

Each row: the dataset, preset, hardware, wall time of training, and the metrics of
`python -m miniclip evaluate` (written to runs/results/<data>-<preset>/eval.json, or
<data>-<preset>-seed<S>/ with several seeds). With several seeds, a row per seed, then
their mean and, under it, the range (smallest to largest).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

COLUMNS = ["zero_shot_top1", "zero_shot_top1_single_prompt", "i2t_recall@1", "i2t_recall@5",
           "i2t_recall@10", "t2i_recall@1", "t2i_recall@5", "t2i_recall@10"]


def hardware(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or "CPU"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()}-core {model}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["shapes", "fashion", "emoji"])
    parser.add_argument("--preset", default="tiny")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=5)
    budget.add_argument("--steps", type=int, help="a number of steps instead of minutes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/results")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train once per seed (the seed of the model and of the data)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="more `miniclip train` options, after --")
    args = parser.parse_args()
    several = len(args.seeds) > 1
    rows = []
    for data in args.data:
        for seed in args.seeds:
            run_dir = Path(args.out) / (f"{data}-{args.preset}" + (f"-seed{seed}" if several else ""))
            wall, results = train_and_evaluate(data, seed, run_dir, args)
            rows.append((data, f"seed {seed}" if several else "", wall, results))
        if several:
            runs = rows[-len(args.seeds):]
            rows.append((data, f"mean of {len(runs)}", sum(r[2] for r in runs) / len(runs),
                         {c: mean([r[3].get(c) for r in runs]) for c in COLUMNS}))
            rows.append((data, "range", None, {c: spread([r[3].get(c) for r in runs]) for c in COLUMNS}))
    print(f"\n| data | preset | hardware | train wall time | {' | '.join(COLUMNS)} |")
    print("|" + "---|" * (4 + len(COLUMNS)))
    for data, which, wall, results in rows:
        cells = [cell(results.get(c)) for c in COLUMNS]
        time_cell = "" if wall is None else f"{wall / 60:.1f} min"
        label = f"{data} ({which})" if which else data
        print(f"| {label} | {args.preset} | {hardware(args.device)} | {time_cell} | {' | '.join(cells)} |")


def train_and_evaluate(data: str, seed: int, run_dir: Path, args: argparse.Namespace) -> tuple[float, dict]:
    """Train afresh in `run_dir` (this script's own folder), evaluate; training's wall time and eval.json."""
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "miniclip", "train", "--data", data, "--preset", args.preset,
               *(["--steps", str(args.steps)] if args.steps else ["--minutes", str(args.minutes)]),
               "--device", args.device, "--seed", str(seed), "--out", str(run_dir),
               *[a for a in args.extra if a != "--"]]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "MINICLIP_PROGRESS": "0"})
    wall = time.perf_counter() - start
    subprocess.run([sys.executable, "-m", "miniclip", "evaluate", str(run_dir), "--device", args.device],
                   check=True, stdout=subprocess.DEVNULL)
    return wall, json.loads((run_dir / "eval.json").read_text())


def mean(values: list) -> float | None:
    return None if None in values else sum(values) / len(values)


def spread(values: list) -> tuple[float, float] | None:
    return None if None in values else (min(values), max(values))


def cell(value) -> str:
    """A metric as the table shows it: "-" where there is none, a range as "low-high"."""
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return f"{value[0]:.3f}-{value[1]:.3f}"
    return f"{value:.3f}"


if __name__ == "__main__":
    main()
