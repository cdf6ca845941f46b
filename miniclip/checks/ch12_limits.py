"""Checks of chapter 12 ("Limits and where next"): the binding score of true against false
captions, and the gradient that the gathering of several processes hands back to each.

The binding score is a measurement of the chapter, not a piece of the package, and the
gradient is the backward of `miniclip.distributed.GatherWithGrad`, which needs a process
group; so both reference answers live here, written for one process, for `show_solution`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from miniclip.checks.core import CheckFailed, compare, describe, exercise, randn
from miniclip.loss import clip_loss

__all__ = ["check_binding_score", "check_gathered_gradient"]


# ---- exercise 1: true caption against false caption ------------------------------------------


def binding_score(image_embeds: torch.Tensor, true_embeds: torch.Tensor,
                  false_embeds: torch.Tensor) -> float:
    """Fraction of images i that are nearer, by cosine, to true caption i than to false caption i."""
    image, true, false = (F.normalize(x, dim=-1) for x in (image_embeds, true_embeds, false_embeds))
    return ((image * true).sum(dim=-1) > (image * false).sum(dim=-1)).float().mean().item()


def as_number(what: str, got) -> torch.Tensor:
    """`got` as a 0-dim float64 tensor, or a CheckFailed saying what came back instead."""
    try:
        value = torch.as_tensor(got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"{what} returned {describe(got)}; return one number") from None
    if value.numel() != 1:
        returned = describe(got)  # as it came back, before any conversion
        if not isinstance(got, torch.Tensor):
            returned += f" of {value.numel()} values"
        raise CheckFailed(f"{what} returned {returned}; return one number, the fraction over all "
                          "images (a mean)")
    return value.reshape(())


def binding_case(seed: int, every: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """12 images and their captions in 8 dimensions. For most images the true caption points
    nearer (cosine about 0.9 against about 0.4), for every `every`-th the false one does; the
    false captions are 10 times as long as the true ones, so that a dot product misjudges."""
    generator = torch.Generator().manual_seed(seed)
    image = randn(12, 8, seed=seed) * torch.empty(12, 1).uniform_(0.5, 3, generator=generator)
    direction = F.normalize(image, dim=-1)
    near = F.normalize(2 * direction + F.normalize(torch.randn(12, 8, generator=generator), dim=-1), dim=-1)
    far = F.normalize(0.5 * direction + F.normalize(torch.randn(12, 8, generator=generator), dim=-1), dim=-1)
    false_is_nearer = (torch.arange(12) % every == 0)[:, None]
    true = torch.where(false_is_nearer, far, near)
    false = 10 * torch.where(false_is_nearer, near, far)
    return image, true, false


@exercise("binding_score", binding_score)
def check_binding_score(binding_score_fn: Callable) -> str:
    for seed, every in ((120, 3), (123, 4)):
        image, true, false = binding_case(seed, every)
        what = f"binding_score(12 images, 12 true, 12 false captions; case {seed})"
        got = as_number(what, binding_score_fn(image, true, false))
        expected = torch.tensor(binding_score(image, true, false), dtype=torch.float64)
        wins = (F.normalize(image, dim=-1) * F.normalize(true, dim=-1)).sum(-1) > (
            F.normalize(image, dim=-1) * F.normalize(false, dim=-1)).sum(-1)
        cosines = F.normalize(image, dim=-1) @ F.normalize(true, dim=-1).t()  # (12, 12)
        mistakes = [
            (torch.tensor(((image * true).sum(-1) > (image * false).sum(-1)).double().mean().item()),
             ("dot products, not cosines: a long false caption then wins by its length. "
              "Normalise the three sets first (F.normalize(x, dim=-1)).")),
            (1 - expected, "that is the fraction where the *false* caption wins; count the true ones."),
            (wins.sum().double(), "a count; divide by the number of images for a fraction."),
            (torch.tensor((cosines.argmax(dim=1) == torch.arange(12)).double().mean().item()),
             ("that compares each image with every true caption (retrieval); compare image i with "
              "its own two captions only, true i against false i.")),
        ]
        compare(what, got, expected, mistakes, atol=1e-6)
    image, _, false = binding_case(120, 3)
    perfect = as_number("binding_score with true captions along their images",
                        binding_score_fn(image, 3 * image, false))
    compare("binding_score when each true caption points exactly at its image (3 times as long)",
            perfect, torch.tensor(1.0, dtype=torch.float64), atol=1e-6)
    return "the fraction of images whose true caption has the higher cosine; chance is 0.5"


# ---- exercise 2: the backward of gathering -----------------------------------------------------


def gathered_gradient(gradients: list[torch.Tensor], rank: int) -> torch.Tensor:
    """What GatherWithGrad.backward hands process `rank`, written for one process.

    `gradients[q]` is process q's gradient of its loss with respect to the gathered (N*B, D)
    features. The all-reduce sums them; process `rank` keeps its own rows, rank*B to (rank+1)*B.
    """
    total = torch.stack(gradients).sum(dim=0)  # dist.all_reduce: the same sum on every process
    share = total.size(0) // len(gradients)
    return total[rank * share : (rank + 1) * share]


def same_loss_gradients(world_size: int, share: int, seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per process, the gradient of the global CLIP loss with respect to the gathered image
    features (all processes compute the same loss), and the one-process gradient of that loss."""
    images, texts = randn(world_size * share, 4, seed=seed), randn(world_size * share, 4, seed=seed + 1)
    gathered = images.clone().requires_grad_()
    loss = clip_loss(10 * F.normalize(texts, dim=-1) @ F.normalize(gathered, dim=-1).t())
    (gradient,) = torch.autograd.grad(loss, gathered)
    return [gradient.clone() for _ in range(world_size)], gradient


def check_gathered_shares(gathered_gradient_fn: Callable, world_size: int, share: int) -> None:
    """Every rank's share, for `world_size` processes of `share` rows (of width 4) each."""
    rows_in_all, width = world_size * share, 4
    # Different gradients on each process, as with open_clip's local loss (each process scores its
    # own rows only): multiplying one's own gradient by N is then wrong.
    gradients = [randn(rows_in_all, width, seed=125 + q) for q in range(world_size)]
    total = torch.stack(gradients).sum(dim=0)
    for rank in range(world_size):
        rows = slice(rank * share, (rank + 1) * share)
        what = (f"gathered_gradient({world_size} processes' {(rows_in_all, width)} gradients, "
                f"rank={rank})")
        got = gathered_gradient_fn([g.clone() for g in gradients], rank)
        if isinstance(got, torch.Tensor) and got.shape == total.shape:
            raise CheckFailed(f"{what}: shape {tuple(got.shape)}, expected {(share, width)}\nHint: "
                              "that is the whole gathered gradient; each process keeps only the rows of "
                              "its own features, rank*B to (rank+1)*B.")
        if isinstance(got, torch.Tensor) and got.dim() == 2 and got.size(0) != share:
            raise CheckFailed(f"{what}: shape {tuple(got.shape)}, expected {(share, width)}\nHint: "
                              f"here each process holds B = {share} rows; find B from the tensors, "
                              "the gathered rows divided by the number of processes: "
                              "gradients[0].size(0) // len(gradients).")
        mistakes = [
            (gradients[rank][rows], ("only this process's own gradient: the other processes' losses "
                                     "depend on these features too, so sum all processes' gradients "
                                     "first (the all-reduce).")),
            (total[rows] / world_size, ("the mean over processes; the all-reduce sums, and "
                                        "DistributedDataParallel divides by N later.")),
            (world_size * gradients[rank][rows],
             ("N times this process's gradient: right only when every process computes the same "
              "loss. Sum the N gradients.")),
            (total[:share], "the rows of rank 0; take the rows of `rank`, rank*B to (rank+1)*B."),
            (total[rank::world_size], ("every N-th row; the gathered tensor is in rank order, so this "
                                       "process's rows are rank*B to (rank+1)*B.")),
        ]
        compare(what, got, total[rows], mistakes)
    per_process, gradient = same_loss_gradients(world_size, share, seed=129)
    for rank in range(world_size):
        rows = slice(rank * share, (rank + 1) * share)
        got = gathered_gradient_fn([g.clone() for g in per_process], rank)
        compare(f"gathered_gradient when all {world_size} processes compute the same CLIP loss, "
                f"rank={rank}: N times the one-process gradient of this share", got,
                world_size * gradient[rows])


@exercise("gathered_gradient", gathered_gradient)
def check_gathered_gradient(gathered_gradient_fn: Callable) -> str:
    for world_size, share in ((3, 2), (2, 3)):  # two shapes, so that a hard-coded B shows
        check_gathered_shares(gathered_gradient_fn, world_size, share)
    return ("the sum over processes, then this process's rows: N × the one-process gradient when "
            "all losses agree, which DistributedDataParallel's mean turns back into it")
