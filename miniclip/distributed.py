"""Several processes, one contrastive batch: the pieces `torchrun` needs.

Chapter 12 explains this file. Under `torchrun --nproc_per_node N -m miniclip train ...`
each process holds a copy of the model and 1/N of each batch. A contrastive loss wants
every image compared with every text of the *whole* batch, so each process gathers the
embeddings of all processes (keeping the gradient path back to its own share, as
open_clip's `gather_with_grad` does) and computes the loss over the full batch. Every
process then holds the same loss; the all-gather's backward sums the N processes'
gradients for each share, and DistributedDataParallel's averaging divides by N again,
so N processes with batch B step exactly like one process with batch N*B.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup(device: str = "auto") -> tuple[int, int, torch.device]:
    """(rank, world size, device); starts the process group when run by torchrun."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no GPU; use --device cpu")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"process {local_rank} of this machine needs GPU {local_rank}, but PyTorch sees "
            f"{torch.cuda.device_count()}: start at most that many processes per machine "
            "(--nproc_per_node), or train on the CPU with --device cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    rank = dist.get_rank()
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        return rank, world_size, torch.device("cuda", local_rank)
    return rank, world_size, torch.device("cpu")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward hands each process the summed gradient of its own share."""

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:
        shares = [torch.empty_like(features) for _ in range(dist.get_world_size())]
        dist.all_gather(shares, features.contiguous())
        return torch.cat(shares, dim=0)  # (N*B, D)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every process's loss depends on every share: sum their gradients
        share = grad.size(0) // dist.get_world_size()
        rank = dist.get_rank()
        return grad[rank * share : (rank + 1) * share]


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """Every process's (B, D) features stacked into (N*B, D), in rank order, differentiably."""
    if not is_distributed():
        return features
    return GatherWithGrad.apply(features)


def broadcast_int(value: int) -> int:
    """Process 0's `value`, on every process."""
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.long)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def any_process(flag: bool) -> bool:
    """Whether `flag` is set on any process (every process gets the same answer)."""
    if not is_distributed():
        return flag
    tensor = torch.tensor([int(flag)], dtype=torch.long)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
