"""Checks of the training loop (chapter 09), and the reference answers they compare with.

`train_step` and `overfit_one_batch` below are the chapter's answers: miniclip's
`Trainer.train_step` is `train_step` plus gradient accumulation and the fp16 gradient
scaler, and chapter 09 runs its diagnostics with these two functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from miniclip import train as train_module
from miniclip.checks.core import CheckFailed, compare, describe, difference, exercise
from miniclip.config import CLIPConfig, TextConfig, VisionConfig
from miniclip.model import CLIP
from miniclip.train import MAX_LOGIT_SCALE, batch_loss, clamp_logit_scale, parameter_groups

__all__ = ["check_learning_rate_at", "check_overfit_one_batch", "check_parameter_groups",
           "check_train_step", "overfit_one_batch", "train_step"]

MICRO = CLIPConfig(
    text=TextConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=2, max_position_embeddings=8, bos_token_id=48,
                    eos_token_id=49, pad_token_id=49),
    vision=VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, image_size=16, patch_size=8),
    projection_dim=16,
)


def micro_model(seed: int = 0) -> CLIP:
    torch.manual_seed(seed)
    return CLIP(MICRO)


def micro_batch(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n random (caption, image) pairs of the micro model's sizes."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 48, (n, 8), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = 48, 49
    return {"input_ids": input_ids, "attention_mask": torch.ones(n, 8, dtype=torch.long),
            "pixel_values": torch.randn(n, 3, 16, 16, generator=generator)}


@contextmanager
def one_thread() -> Iterator[None]:
    """Micro models run fastest on one thread, and two threads crawl on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([parameter.detach().flatten() for _, parameter in sorted(model.named_parameters())])


# ---- parameter_groups ----------------------------------------------------------------------


def kind(name: str) -> str:
    """What a CLIP parameter is, in words, from its name."""
    if name == "logit_scale":
        return "the temperature"
    if name.endswith("class_embedding"):
        return "the class embedding"
    if name.endswith("bias"):
        return "a bias"
    if "norm" in name:
        return "a LayerNorm gain"
    if "patch_embedding" in name:
        return "the patch convolution"
    if "embedding" in name:
        return "an embedding table"
    return "a weight matrix"


def check_groups(what: str, groups: Any, model: nn.Module, weight_decay: float) -> int:
    """Raise CheckFailed unless `groups` decay exactly the trainable matrices of `model` by
    `weight_decay`, and nothing else; return how many tensors are decayed."""
    if not isinstance(groups, (list, tuple)) or not all(
            isinstance(group, dict) and "params" in group for group in groups):
        raise CheckFailed(f"{what} returned {describe(groups)}; return a list of dicts, each "
                          "with 'params' (a list of parameters) and 'weight_decay'")
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    decay = {name: weight_decay if parameter.dim() >= 2 else 0.0
             for name, parameter in model.named_parameters() if parameter.requires_grad}
    found: dict[str, float] = {}
    for group in groups:
        if "weight_decay" not in group:
            raise CheckFailed(f"{what}: a group has no 'weight_decay' key, so it gets the "
                              "optimizer's default (AdamW's is 0.01, not 0); set it in every "
                              "group: 0.0 for the gains and biases")
        for parameter in group["params"]:
            name = names.get(id(parameter))
            if name is None:
                raise CheckFailed(f"{what}: a group holds {describe(parameter)} that is not a "
                                  "parameter of the model")
            if name not in decay:
                raise CheckFailed(f"{what}: {name} is in a group, but it is frozen "
                                  f"(requires_grad=False, as are {len(names) - len(decay)} "
                                  "parameters here); leave out the parameters with "
                                  "requires_grad=False: keep one only if parameter.requires_grad")
            if name in found:
                raise CheckFailed(f"{what}: {name} is in two groups; each parameter belongs to "
                                  "exactly one, or the optimizer refuses them")
            found[name] = float(group["weight_decay"])
    missing = [name for name in decay if name not in found]
    if missing:
        raise CheckFailed(f"{what}: {len(missing)} parameters are in no group, e.g. {missing[0]}; "
                          "the optimizer would never update them")
    over = {kind(name): name for name in sorted(decay, reverse=True) if found[name] > decay[name]}
    under = {kind(name): name for name in sorted(decay, reverse=True) if found[name] < decay[name]}
    shapes = {name: tuple(parameter.shape) for name, parameter in model.named_parameters()}
    if over:
        examples = "; ".join(f"{name} {shapes[name]}, {what_it_is}" for what_it_is, name in sorted(over.items()))
        temperature = (" Decaying logit_scale pulls it towards 0, a temperature of 1."
                       if "the temperature" in over else "")
        raise CheckFailed(f"{what}: decayed, but should not be: {examples}. Decay only tensors "
                          f"with two or more dimensions (parameter.dim() >= 2).{temperature}")
    if under:
        examples = "; ".join(f"{name} {shapes[name]}, {what_it_is}" for what_it_is, name in sorted(under.items()))
        raise CheckFailed(f"{what}: not decayed, but should be: {examples}. Embedding tables and "
                          "the patch convolution are weight matrices too (dim >= 2).")
    return sum(1 for value in decay.values() if value)


@exercise("parameter_groups", train_module.parameter_groups)
def check_parameter_groups(parameter_groups_fn: Callable) -> str:
    model = micro_model()
    weight_decay = 0.1
    decayed = check_groups(f"parameter_groups(model, weight_decay={weight_decay})",
                           parameter_groups_fn(model, weight_decay), model, weight_decay)
    frozen = micro_model()
    frozen.vision_model.requires_grad_(False)  # a frozen tower: only the text side trains
    frozen.visual_projection.requires_grad_(False)
    check_groups(f"parameter_groups(model with a frozen vision tower, weight_decay={weight_decay})",
                 parameter_groups_fn(frozen, weight_decay), frozen, weight_decay)
    total = sum(1 for _ in model.parameters())
    return (f"weight decay on the {decayed} weight matrices, none on the {total - decayed} "
            "gains, biases, class embedding and logit_scale")


# ---- learning_rate_at ----------------------------------------------------------------------


def schedule(step: int, total: int, peak: float, warmup: int, cap: bool = True, from_zero=False,
             whole_run=False, clamp_end=True, half=True, linear=False) -> float:
    """The schedule with knobs that reproduce common mistakes."""
    if cap:
        warmup = min(warmup, max(total // 5, 1))
    if step < warmup:
        return peak * (step if from_zero else step + 1) / warmup
    progress = step / total if whole_run else (step - warmup) / max(total - warmup, 1)
    if clamp_end:
        progress = min(progress, 1.0)
    if linear:
        return peak * (1 - progress)
    return peak * (0.5 if half else 1.0) * (1 + math.cos(math.pi * progress))


def schedule_values(total: int, peak: float, warmup: int, **knobs) -> torch.Tensor:
    """`schedule` at steps 0 to total + 2."""
    return torch.tensor([schedule(step, total, peak, warmup, **knobs) for step in range(total + 3)],
                        dtype=torch.float64)


SCHEDULES = [(100, 1e-3, 10), (40, 0.5, 20), (3, 1.0, 5)]  # total_steps, peak, warmup_steps


@exercise("learning_rate_at", train_module.learning_rate_at)
def check_learning_rate_at(learning_rate_at: Callable) -> str:
    from transformers import get_cosine_schedule_with_warmup

    for total, peak, warmup in SCHEDULES:
        what = (f"learning_rate_at(step, total_steps={total}, peak={peak:g}, "
                f"warmup_steps={warmup}) for steps 0 to {total + 2}")
        steps = range(total + 3)
        values = [learning_rate_at(step, total, peak, warmup) for step in steps]
        if not all(isinstance(value, (int, float)) for value in values):
            bad = next(value for value in values if not isinstance(value, (int, float)))
            raise CheckFailed(f"{what}: returned {describe(bad)}; return a Python float")
        got = torch.tensor(values, dtype=torch.float64)
        expected = torch.tensor([train_module.learning_rate_at(step, total, peak, warmup)
                                 for step in steps], dtype=torch.float64)
        mistakes = [
            (schedule_values(total, peak, warmup, from_zero=True),
             "the warm-up starts at 0; step 0 already trains, at peak / warmup_steps: "
             "peak * (step + 1) / warmup_steps, as open_clip does."),
            (schedule_values(total, peak, warmup, cap=False),
             "the warm-up was not shortened: a warm-up longer than a fifth of the run becomes "
             "max(total_steps // 5, 1) steps."),
            (schedule_values(total, peak, warmup, whole_run=True),
             "the cosine runs over the whole run; it starts where the warm-up ends: "
             "progress = (step - warmup) / (total_steps - warmup)."),
            (schedule_values(total, peak, warmup, clamp_end=False),
             "after total_steps the cosine climbs again; stop it at 0 with min(progress, 1)."),
            (schedule_values(total, peak, warmup, half=False),
             "the decay starts at 2 × peak; it is peak · ½ (1 + cos(π · progress))."),
            (schedule_values(total, peak, warmup, linear=True),
             "that decays linearly; the decay is a half cosine, ½ (1 + cos(π · progress))."),
        ]
        compare(what, got, expected, mistakes, atol=1e-12, rtol=1e-9)
    total, peak, warmup = SCHEDULES[0]
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=peak)
    factor = get_cosine_schedule_with_warmup(optimizer, warmup, total).lr_lambdas[0]
    decay = range(warmup, total)
    compare(f"the cosine part (steps {warmup} to {total - 1}), against transformers' "
            "get_cosine_schedule_with_warmup",
            torch.tensor([float(learning_rate_at(step, total, peak, warmup)) for step in decay],
                         dtype=torch.float64),
            torch.tensor([peak * factor(step) for step in decay], dtype=torch.float64),
            atol=1e-12, rtol=1e-9)
    return ("linear warm-up from peak / warmup_steps, half-cosine to 0, shortened warm-up on "
            "short runs; the cosine equals transformers' get_cosine_schedule_with_warmup")


# ---- train_step ----------------------------------------------------------------------------


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               learning_rate: float, grad_clip: float = 1.0) -> float:
    """One optimizer step on one batch: the reference answer of chapter 09's exercise 3."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    loss = batch_loss(model, model, batch)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    clamp_logit_scale(model)  # after the step, which may have pushed it past ln 100
    return loss.item()


def step_with(set_lr=True, clip=True, zero_grad=True, clamp="after") -> Callable:
    """train_step with knobs that reproduce common mistakes."""
    def wrong(model, optimizer, batch, learning_rate, grad_clip=1.0):
        if set_lr:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
        loss = batch_loss(model, model, batch)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if clamp == "before":
            clamp_logit_scale(model)
        optimizer.step()
        if zero_grad:
            optimizer.zero_grad(set_to_none=True)
        if clamp == "after":
            clamp_logit_scale(model)
        return loss.item()
    return wrong


class RecordingAdamW(torch.optim.AdamW):
    """AdamW that notes, at each step, the gradient norm and the learning rates it sees."""

    def __init__(self, params, **options):
        super().__init__(params, **options)
        self.seen: list[tuple[float, list[float]]] = []

    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item() if grads else 0.0
        self.seen.append((norm, [group["lr"] for group in self.param_groups]))
        return super().step(closure)


STEPS = [(1, 1e-2), (2, 5e-3)]  # (batch seed, learning rate) of each call
GRAD_CLIP = 100.0  # below the first step's gradient norm (about 800), so clipping shows


def run_steps(step_fn: Callable) -> tuple[list, CLIP, RecordingAdamW]:
    """Two calls of `step_fn` on a micro model whose logit_scale starts above ln 100."""
    model = micro_model(seed=1)
    with torch.no_grad():
        model.logit_scale.fill_(5.0)
    optimizer = RecordingAdamW(parameter_groups(model, 0.1), lr=0.5)  # train_step must set lr
    losses = [step_fn(model, optimizer, micro_batch(8, seed), learning_rate, grad_clip=GRAD_CLIP)
              for seed, learning_rate in STEPS]
    return losses, model, optimizer


@exercise("train_step", train_step)
def check_train_step(train_step_fn: Callable) -> str:
    what = (f"two calls of train_step(model, optimizer, batch, learning_rate, "
            f"grad_clip={GRAD_CLIP}), learning rates {[lr for _, lr in STEPS]}")
    with one_thread():
        losses, model, optimizer = run_steps(train_step_fn)
        expected_losses, expected_model, _ = run_steps(train_step)
        no_zero_grad = run_steps(step_with(zero_grad=False))[1]
        clamped_before = run_steps(step_with(clamp="before"))[1]
    for call, loss in enumerate(losses):
        if not isinstance(loss, float):
            raise CheckFailed(f"{what}: call {call + 1} returned {describe(loss)}; return "
                              "loss.item(), a Python float (a tensor would keep the whole graph "
                              "of the step alive)")
    if len(optimizer.seen) != len(STEPS):
        raise CheckFailed(f"{what}: optimizer.step() ran {len(optimizer.seen)} times, expected "
                          f"once per call ({len(STEPS)})")
    for call, ((norm, rates), (_, learning_rate)) in enumerate(zip(optimizer.seen, STEPS)):
        if any(not math.isclose(rate, learning_rate) for rate in rates):
            raise CheckFailed(f"{what}: at optimizer.step() of call {call + 1} the groups' "
                              f"learning rates were {rates}, expected {learning_rate:g} in every "
                              "group; set group['lr'] in every optimizer.param_groups entry")
        if norm > GRAD_CLIP * (1 + 1e-4):
            raise CheckFailed(f"{what}: at optimizer.step() of call {call + 1} the gradient norm "
                              f"was {norm:.3g}, more than grad_clip={GRAD_CLIP}; clip with "
                              "nn.utils.clip_grad_norm_(model.parameters(), grad_clip) between "
                              "backward() and step()")
    scale = model.logit_scale.detach()
    if scale.item() > MAX_LOGIT_SCALE + 1e-6:
        raise CheckFailed(f"{what}: logit_scale is {scale.item():.4f} after the steps (it started at "
                          f"5.0), above ln 100 = {MAX_LOGIT_SCALE:.4f}; clamp it after "
                          "optimizer.step(), under torch.no_grad()")
    compare(f"{what}: logit_scale after the steps", scale, expected_model.logit_scale.detach(),
            [(clamped_before.logit_scale.detach(),
              "clamped before optimizer.step(); the step can push it past ln 100 again, so "
              "clamp after it.")], atol=1e-6)
    compare(f"{what}: the losses returned (each computed before its step)", torch.tensor(losses),
            torch.tensor(expected_losses), atol=1e-6)
    compare(f"{what}: all weights after the steps (sorted by name, flattened)", flat(model),
            flat(expected_model), [
                (flat(no_zero_grad),
                 "the gradients of the first call were still there in the second: "
                 "optimizer.zero_grad() after the step (or before the backward)."),
            ], atol=1e-6, rtol=1e-5)
    return ("sets the learning rate, clips the gradient norm, steps, zeroes the gradients and "
            "clamps logit_scale at ln 100")


# ---- overfit_one_batch ---------------------------------------------------------------------


def overfit_one_batch(model: nn.Module, batch: dict[str, torch.Tensor], steps: int,
                      learning_rate: float) -> list[float]:
    """`steps` calls of train_step on the same batch, from a fresh AdamW; the losses."""
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.0), lr=learning_rate)
    return [train_step(model, optimizer, batch, learning_rate) for _ in range(steps)]


def overfit_with(fresh_optimizer=False, weight_decay=0.0, sgd=False, extra=0,
                 all_parameters=False) -> Callable:
    """overfit_one_batch with knobs that reproduce common mistakes."""
    def wrong(model, batch, steps, learning_rate):
        def new():
            if all_parameters:  # AdamW's own weight_decay, 0.01, on every parameter
                return torch.optim.AdamW(model.parameters(), lr=learning_rate)
            groups = parameter_groups(model, weight_decay)
            if sgd:
                return torch.optim.SGD(groups, lr=learning_rate)
            return torch.optim.AdamW(groups, lr=learning_rate)
        optimizer = new()
        losses = []
        for _ in range(steps + extra):
            if fresh_optimizer:
                optimizer = new()
            losses.append(train_step(model, optimizer, batch, learning_rate))
        return losses
    return wrong


OVERFIT_STEPS, OVERFIT_RATE = 30, 1e-2


def overfit_losses(fn: Callable) -> torch.Tensor:
    return torch.tensor(fn(micro_model(seed=2), micro_batch(8, seed=3), OVERFIT_STEPS, OVERFIT_RATE),
                        dtype=torch.float32)


@exercise("overfit_one_batch", overfit_one_batch)
def check_overfit_one_batch(overfit_fn: Callable) -> str:
    what = (f"overfit_one_batch(micro model, batch of 8, steps={OVERFIT_STEPS}, "
            f"learning_rate={OVERFIT_RATE:g})")
    with one_thread():
        result = overfit_fn(micro_model(seed=2), micro_batch(8, seed=3), OVERFIT_STEPS, OVERFIT_RATE)
    if not isinstance(result, (list, tuple)) or not all(isinstance(x, float) for x in result):
        raise CheckFailed(f"{what} returned {describe(result)}; return the list of the floats "
                          "that train_step returned")
    got = torch.tensor(result, dtype=torch.float32)
    with one_thread():
        expected = overfit_losses(overfit_one_batch)
    if len(got) != len(expected):
        raise CheckFailed(f"{what}: {len(got)} losses, expected one per step, {len(expected)}")
    mistakes = []
    if difference(got, expected, atol=1e-5, rtol=1e-4) is not None:  # only then train them
        with one_thread():
            mistakes = [
                (overfit_losses(overfit_with(fresh_optimizer=True)),
                 "a new optimizer at every step forgets AdamW's running averages; make it once, "
                 "before the loop."),
                (overfit_losses(overfit_with(weight_decay=0.1)),
                 "with weight decay; a diagnostic that must reach 0 uses parameter_groups(model, 0.0)."),
                (overfit_losses(overfit_with(all_parameters=True)),
                 "torch.optim.AdamW(model.parameters(), lr=learning_rate) decays every parameter "
                 "by AdamW's default weight_decay=0.01, gains, biases and logit_scale included. "
                 "This diagnostic wants no weight decay at all, so that the loss can reach 0: "
                 "AdamW(parameter_groups(model, 0.0), lr=learning_rate)."),
                (overfit_losses(overfit_with(sgd=True)), "that is SGD; use torch.optim.AdamW."),
            ]
    compare(f"{what}: the losses, step by step", got, expected, mistakes, atol=1e-5, rtol=1e-4)
    return (f"{OVERFIT_STEPS} steps on one batch of 8 take the loss from {expected[0]:.2f} "
            f"(ln 8 = {math.log(8):.2f}) to {expected[-1]:.3f}")
