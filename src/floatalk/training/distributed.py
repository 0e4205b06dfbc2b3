"""Data parallelism through torch.distributed, for runs started by torchrun (or a single process).

`torchrun --nproc_per_node N $(which floatalk) train ...` sets RANK / WORLD_SIZE / LOCAL_RANK;
we join the process group (NCCL on GPUs, gloo on CPUs), broadcast rank 0's initial weights and
average gradients with all_reduce after every backward, so every rank keeps identical weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Context:
    """Where this process runs: rank, world size and device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Context:
    """Join the torchrun process group when there is one; pick the device ('auto' = cuda if available)."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Context(rank=rank, world=world, device=dev)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, ctx: Context) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if ctx.world == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(params: Iterable[nn.Parameter], ctx: Context) -> None:
    """Average .grad over ranks with one flattened all_reduce (missing grads count as zeros)."""
    if ctx.world == 1:
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def mean_over_ranks(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """Average scalar logs over ranks."""
    if ctx.world == 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world for k, v in zip(values, t)}


def barrier(ctx: Context) -> None:
    if ctx.world > 1:
        dist.barrier()


def weight_checksums(modules: Iterable[nn.Module], ctx: Context) -> list[float]:
    """One float64 checksum of all parameters per rank (rank order); equal values = identical weights."""
    total = torch.zeros((), dtype=torch.float64)
    for module in modules:
        for p in module.parameters():
            flat = p.detach().double().flatten().cpu()
            total += (flat * (torch.arange(flat.numel(), dtype=torch.float64) % 997 + 1)).sum()
    if ctx.world == 1:
        return [float(total)]
    gathered = [torch.zeros_like(total) for _ in range(ctx.world)]
    dist.all_gather(gathered, total)
    return [float(t) for t in gathered]
