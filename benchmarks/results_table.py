"""Train and evaluate on each built-in dataset and print the README's results table.

    python benchmarks/results_table.py                   # 5 minutes each, this machine
    python benchmarks/results_table.py --data-root DIR   # Fashion-MNIST's files in DIR
    python benchmarks/results_table.py --minutes 1 --data shapes
    python benchmarks/results_table.py --preset small --device cuda --minutes 2
    python benchmarks/results_table.py --data shapes --seeds 0 1 2   # how much a seed moves it
    python benchmarks/results_table.py --steps 2 -- --batch-size 8   # a quick try

Each row: the dataset, preset, hardware, wall time of training, and the metrics of
`python -m miniclip evaluate` (written to runs/results/<data>-<preset>/eval.json, or
<data>-<preset>-seed<S>/ with several seeds). With several seeds, a row per seed, then
their mean and, under it, the range (smallest to largest). `--data-root` goes to the
fashion run alone; the `miniclip train` options after `--` go to every run.

A row is printed as soon as its run is evaluated, and the whole table at the end. A run
that fails is named in one line and left out; the others go on, and the script then
exits with status 1.
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
    parser.add_argument("--data-root", help="the folder of Fashion-MNIST's files, for the fashion run alone")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="more `miniclip train` options for every run, after --")
    args = parser.parse_args()
    args.extra = [a for a in args.extra if a != "--"]
    if "--data-root" in args.extra:
        parser.error("give --data-root before `--`: it is the fashion run's alone (shapes and emoji have no root)")
    if args.data_root and "fashion" not in args.data:
        parser.error("--data-root is for the fashion run, and --data does not name fashion")
    several = len(args.seeds) > 1
    rows, failed = [], []
    for data in args.data:
        done = []
        for seed in args.seeds:
            name = f"{data}-{args.preset}" + (f"-seed{seed}" if several else "")
            try:
                wall, results = train_and_evaluate(data, seed, Path(args.out) / name, args)
            except subprocess.CalledProcessError as error:
                print(f"results_table.py: run {name} failed: `python {' '.join(error.cmd[1:4])}` exited with "
                      f"status {error.returncode} (its message is above)", file=sys.stderr, flush=True)
                failed.append(name)
                continue
            done.append((data, f"seed {seed}" if several else "", wall, results))
            print(row(*done[-1], args), flush=True)
        rows += done
        if several and done:  # over the seeds that ran
            summary = [(data, f"mean of {len(done)}", sum(r[2] for r in done) / len(done),
                        {c: mean([r[3].get(c) for r in done]) for c in COLUMNS}),
                       (data, "range", None, {c: spread([r[3].get(c) for r in done]) for c in COLUMNS})]
            print(*(row(*line, args) for line in summary), sep="\n", flush=True)
            rows += summary
    print(f"\n| data | preset | hardware | train wall time | {' | '.join(COLUMNS)} |")
    print("|" + "---|" * (4 + len(COLUMNS)))
    for data, which, wall, results in rows:
        print(row(data, which, wall, results, args))
    if failed:
        print(f"results_table.py: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


def row(data: str, which: str, wall: float | None, results: dict, args: argparse.Namespace) -> str:
    """A line of the table: `which` run of `data` ("seed 1", "mean of 3", "range" or ""), its metrics."""
    cells = [cell(results.get(c)) for c in COLUMNS]
    time_cell = "" if wall is None else f"{wall / 60:.1f} min"
    label = f"{data} ({which})" if which else data
    return f"| {label} | {args.preset} | {hardware(args.device)} | {time_cell} | {' | '.join(cells)} |"


def train_and_evaluate(data: str, seed: int, run_dir: Path, args: argparse.Namespace) -> tuple[float, dict]:
    """Train afresh in `run_dir` (this script's own folder), evaluate; training's wall time and eval.json."""
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "miniclip", "train", "--data", data, "--preset", args.preset,
               *(["--steps", str(args.steps)] if args.steps else ["--minutes", str(args.minutes)]),
               "--device", args.device, "--seed", str(seed), "--out", str(run_dir),
               *(["--data-root", args.data_root] if data == "fashion" and args.data_root else []),
               *args.extra]
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
