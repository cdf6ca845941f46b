"""Time a training step of miniclip against transformers.CLIPModel, same config, same weights.

A step is forward, the contrastive loss, backward and an AdamW update. The two models
take turns (interleaved rounds) so that both see the same machine state, and the script
prints samples/s for each and their ratio. Peak memory: each model alone in a fresh
process, from building it to the end of three steps, above what the process held before
(the batch): on a GPU the allocator's peak (`torch.cuda.max_memory_allocated`), on a CPU
the peak resident memory. So each figure holds one model, its gradients, one AdamW state
and the step's activations, on either device.

    python benchmarks/bench_train_step.py                      # tiny, batch 64, CPU
    python benchmarks/bench_train_step.py --preset vit-b-32 --batch-size 256 --device cuda
    python benchmarks/bench_train_step.py --device cuda --compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import transformers

from miniclip import CLIP, CLIPConfig, clip_loss


def make_models(preset: str, device: str):
    torch.manual_seed(0)
    model = CLIP(CLIPConfig.preset(preset))
    hf_model = model.to_hf()
    hf_model.set_attn_implementation("sdpa")
    return model.to(device).train(), hf_model.to(device).train()


def make_batch(config: CLIPConfig, batch_size: int, device: str):
    """Captions of 8 to 20 tokens padded to the longest, and random images."""
    generator = torch.Generator().manual_seed(1)
    length = min(20, config.text.max_position_embeddings)
    lengths = torch.randint(8, length + 1, (batch_size,), generator=generator)
    input_ids = torch.randint(1, 49000, (batch_size, length), generator=generator)
    input_ids[torch.arange(batch_size), lengths - 1] = config.text.eos_token_id
    attention_mask = (torch.arange(length) < lengths[:, None]).long()
    size = config.vision.image_size
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator)
    return input_ids.to(device), attention_mask.to(device), pixel_values.to(device)


def step_function(model, is_hf: bool, batch, device: str, compile_model: bool):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compile_model else model
    input_ids, attention_mask, pixel_values = batch
    dtype = torch.bfloat16 if device == "cuda" else torch.float32

    def step():
        with torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
            if is_hf:
                out = forward(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask)
            else:
                out = forward(input_ids, pixel_values, attention_mask)
            loss = clip_loss(out.logits_per_text.float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed(step, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def memory_status(field: str) -> float:
    """A field of /proc/self/status (VmRSS: resident now, VmHWM: peak resident) in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_alone(args, which: str) -> float:
    """Peak memory of `which` model's steps, measured alone in a fresh process."""
    command = [sys.executable, __file__, "--memory-of", which, "--preset", args.preset,
               "--batch-size", str(args.batch_size), "--steps", "3", "--device", args.device,
               *(["--compile"] if args.compile and args.device == "cuda" else [])]  # as timed
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def peak_memory(run, device: str) -> float:
    """Peak memory while `run()` runs, above what was held before it, in MiB."""
    if device != "cuda":
        return peak_resident_memory(run)
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - baseline) / 2**20


def peak_resident_memory(run) -> float:
    """Peak resident memory while `run()` runs, above what was resident before it, in MiB."""
    baseline = memory_status("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets the peak (VmHWM) to the current resident size
    run()
    return memory_status("VmHWM") - baseline


def memory_child(args) -> None:
    """Peak memory from building one model to the end of its steps, in MiB."""
    config = CLIPConfig.preset(args.preset)
    batch = make_batch(config, args.batch_size, args.device)

    def build_and_step():
        torch.manual_seed(0)
        is_hf = args.memory_of == "transformers"
        model = transformers.CLIPModel(config.to_hf()) if is_hf else CLIP(config)
        step = step_function(model.to(args.device).train(), is_hf, batch, args.device, args.compile)
        for _ in range(args.steps):
            step()

    print(json.dumps(peak_memory(build_and_step, args.device)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed rounds per model")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--memory-of", choices=["miniclip", "transformers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        return memory_child(args)

    memory = {name: peak_memory_alone(args, name) for name in ("miniclip", "transformers")}
    config = CLIPConfig.preset(args.preset)
    model, hf_model = make_models(args.preset, args.device)
    batch = make_batch(config, args.batch_size, args.device)
    steps = {
        "miniclip": step_function(model, False, batch, args.device, args.compile),
        "transformers": step_function(hf_model, True, batch, args.device, args.compile),
    }
    for step in steps.values():  # warm up (and compile)
        for _ in range(3):
            step()
    times = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, step in steps.items():
            times[name].append(timed(step, args.device))

    rate = {name: args.batch_size / statistics.median(t) for name, t in times.items()}
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"preset {args.preset}, batch {args.batch_size}, {where}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, compile={args.compile}")
    for name in steps:
        print(f"  {name:13s} {rate[name]:9.1f} samples/s   peak memory {memory[name]:8.1f} MiB")
    print(f"  speed ratio miniclip / transformers: {rate['miniclip'] / rate['transformers']:.2f}x")
    print(f"  memory ratio miniclip / transformers: {memory['miniclip'] / memory['transformers']:.2f}x")


if __name__ == "__main__":
    main()
