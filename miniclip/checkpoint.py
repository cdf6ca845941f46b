"""Training checkpoints that survive crashes and load without running code.

Chapter 09 uses this file. A checkpoint is a folder `RUN_DIR/checkpoints/step-000200/`:

    config.json, model.safetensors   the model, in Hugging Face's layout
    vocab.json, merges.txt, ...      the tokenizer, when the run learnt its own vocabulary
    optimizer.safetensors            AdamW's moment estimates, one tensor per entry
    state.json                       step, optimizer hyper-parameters, random states,
                                     the trainer's settings, and a SHA-256 of each file

Nothing is pickled, so loading a checkpoint cannot run code. A checkpoint is written to
a temporary folder and renamed into place only when complete, so a crash mid-write
leaves the previous checkpoint untouched; `state.json` is written last and carries the
files' checksums, so a checkpoint damaged later is detected and skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from miniclip.config import OPENAI_VOCAB_SIZE

STATE_NAME = "state.json"
OPTIMIZER_NAME = "optimizer.safetensors"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Split an optimizer's state dict into flat tensors and JSON-ready parameter groups."""
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, entries in state["state"].items()
        for name, value in entries.items()
    }
    return tensors, state["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for group in groups:
        group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def random_states() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Python's, numpy's and torch's random states: JSON for the first two, tensors for torch."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    as_json = {
        "python": [version, list(python_state), gauss],
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return as_json, tensors


def restore_random_states(as_json: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, python_state, gauss = as_json["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, keys, position, has_gauss, cached = as_json["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[key] for key in sorted(tensors) if key.startswith("cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])


def save_checkpoint(
    folder: Path,
    model,
    optimizer: torch.optim.Optimizer,
    step: int,
    extra: dict[str, Any],
    keep: int = 3,
    tokenizer=None,
) -> Path:
    """Write checkpoint `step` under `folder` atomically and keep the newest `keep` of them.

    A tokenizer other than OpenAI's is saved beside the model, so the folder is complete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}"
    partial = folder / f".step-{step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    if tokenizer is not None and tokenizer.vocab_size != model.config.text.vocab_size:
        raise ValueError("the tokenizer's vocabulary does not match the model's")
    if tokenizer is not None and tokenizer.vocab_size != OPENAI_VOCAB_SIZE:
        tokenizer.save_pretrained(partial)
    tensors, groups = optimizer_tensors(optimizer)
    random_json, random_tensors = random_states()
    tensors.update({f"rng.{key}": value for key, value in random_tensors.items()})
    save_file(tensors, partial / OPTIMIZER_NAME)
    files = sorted(path.name for path in partial.iterdir())
    state = {
        "step": step,
        "param_groups": groups,
        "random": random_json,
        "sha256": {name: sha256(partial / name) for name in files},
        **extra,
    }
    write_atomically(partial / STATE_NAME, json.dumps(state, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    for old in checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints under `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("step-*") if path.is_dir())


def verify(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's state.json, after checking every file against its recorded checksum."""
    state_path = checkpoint / STATE_NAME
    if not state_path.exists():
        raise ValueError(f"{checkpoint} has no {STATE_NAME}")
    try:
        state = json.loads(state_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{state_path} is not valid JSON: {error}") from error
    for name, expected in state["sha256"].items():
        path = checkpoint / name
        if not path.exists() or sha256(path) != expected:
            raise ValueError(f"{path} is missing or does not match its checksum")
    return state


def latest_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that passes `verify`, warning about each damaged one skipped."""
    for checkpoint in reversed(checkpoints(folder)):
        try:
            return checkpoint, verify(checkpoint)
        except ValueError as problem:
            warnings.warn(f"skipping damaged checkpoint {checkpoint.name}: {problem}", stacklevel=2)
    return None


def load_training_state(checkpoint: Path, state: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
    """Restore the optimizer and the random states saved with `checkpoint`."""
    tensors = load_file(checkpoint / OPTIMIZER_NAME)
    random_tensors = {key[4:]: tensors.pop(key) for key in list(tensors) if key.startswith("rng.")}
    load_optimizer(optimizer, tensors, state["param_groups"])
    restore_random_states(state["random"], random_tensors)
