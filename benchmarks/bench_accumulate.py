"""What gradient accumulation costs and saves: one contrastive batch in 1, 2, 4, ... micro-batches.

`--accumulate K` takes each step's batch through the model K micro-batches at a time
(`miniclip.train.accumulated_backward`): every split computes the gradient of the whole
batch (tests/test_train.py checks it), with the activations of one micro-batch in memory,
for one more forward pass without a graph. This script measures both sides on one
machine in one run: samples/s of a full training step (forward, loss, backward, AdamW)
and peak memory, each against the batch taken whole. Peak memory: each split alone in a
fresh process, over two steps, above what the model and the batch hold (as
bench_train_step.py does): on a GPU the allocator's peak, on a CPU the peak resident
memory. So each figure holds the gradients, one AdamW state and the split's activations.

    python benchmarks/bench_accumulate.py                # tiny, batch 1024 as 1, 4 and 16 parts, CPU
    python benchmarks/bench_accumulate.py --preset vit-b-32 --batch-size 4096 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from contextlib import nullcontext

import torch
from bench_train_step import make_batch, peak_memory, timed

from miniclip import CLIP, CLIPConfig
from miniclip.train import accumulated_backward, split_batch


def step_function(model: CLIP, batch: dict[str, torch.Tensor], parts: int, device: str):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def autocast():
        return torch.autocast(device, dtype=torch.bfloat16) if device == "cuda" else nullcontext()

    def step():  # the trainer's backward, then an AdamW step
        accumulated_backward(model, model, split_batch(batch, parts), autocast=autocast)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def setup(preset: str, batch_size: int, device: str) -> tuple[CLIP, dict[str, torch.Tensor]]:
    config = CLIPConfig.preset(preset)
    input_ids, attention_mask, pixel_values = make_batch(config, batch_size, device)
    torch.manual_seed(0)
    model = CLIP(config).to(device).train()
    return model, {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values": pixel_values}


def memory_child(args) -> None:
    """Peak memory of a few steps with `--memory-of` micro-batches, in MiB, from after the setup."""
    model, batch = setup(args.preset, args.batch_size, args.device)
    step = step_function(model, batch, args.memory_of, args.device)
    print(json.dumps(peak_memory(lambda: [step() for _ in range(2)], args.device)))


def peak_memory_alone(args, parts: int) -> float:
    """Peak memory of steps in `parts` micro-batches, measured alone in a fresh process."""
    command = [sys.executable, __file__, "--memory-of", str(parts), "--preset", args.preset,
               "--batch-size", str(args.batch_size), "--splits", str(parts), "--device", args.device]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 4, 16],
                        help="micro-batches per step to compare; the first is the reference")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed rounds per split")
    parser.add_argument("--memory-of", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for parts in args.splits:
        if args.batch_size % parts:
            parser.error(f"batch size {args.batch_size} does not split into {parts} equal micro-batches")
    if args.memory_of:
        return memory_child(args)

    memory = {parts: peak_memory_alone(args, parts) for parts in args.splits}
    model, batch = setup(args.preset, args.batch_size, args.device)
    steps = {parts: step_function(model, batch, parts, args.device) for parts in args.splits}
    for step in steps.values():  # warm up
        step()
    times = {parts: [] for parts in steps}
    for _ in range(args.steps):  # interleaved rounds: every split sees the same machine state
        for parts, step in steps.items():
            times[parts].append(timed(step, args.device))
    rate = {parts: args.batch_size / statistics.median(t) for parts, t in times.items()}
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"preset {args.preset}, one contrastive batch of {args.batch_size}, {where}, torch {torch.__version__}")
    first = args.splits[0]
    for parts in args.splits:
        print(f"  {parts:3d} x {args.batch_size // parts:5d} pairs  {rate[parts]:9.1f} samples/s "
              f"({rate[parts] / rate[first]:.2f}x)   peak memory {memory[parts]:8.1f} MiB "
              f"({memory[parts] / memory[first]:.2f}x)")


if __name__ == "__main__":
    main()
