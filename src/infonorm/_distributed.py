"""Sums and maxima across a torch.distributed process group, for statistics that span ranks.

Both non-local objects of the quiz need them: the joint P(y, ŷ) of a batch split across
ranks, and the mean and variance of a layer split along t. `group=None` means a single
process: every function then returns its input unchanged, at no cost.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def check_group(group: Any) -> Any:
    """Raise ValueError unless `group` can be used for collectives now."""
    if group is None:
        return None
    if not dist.is_available():
        raise ValueError("group: this build of torch has no torch.distributed")
    if not dist.is_initialized():
        raise ValueError(
            "group: torch.distributed is not initialized; call "
            "torch.distributed.init_process_group first (torchrun does this for you)"
        )
    try:
        dist.get_world_size(group)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"group: not a usable process group ({error})") from None
    return group


def all_sum(t: torch.Tensor, group: Any) -> torch.Tensor:
    """Σ over the ranks of `group` of t (t itself when group is None)."""
    if group is None:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return t


def all_sum_(t: torch.Tensor, group: Any) -> torch.Tensor:
    """all_sum in t's own storage, for buffers too large to copy; returns t."""
    if group is not None:
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return t


def all_gather(t: torch.Tensor, group: Any) -> torch.Tensor:
    """The ranks' t stacked in rank order, shape (W, *t.shape) (t[None] when group is None)."""
    if group is None:
        return t.unsqueeze(0)
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, t.contiguous(), group=group)
    return torch.stack(parts)


def all_max(t: torch.Tensor, group: Any) -> torch.Tensor:
    """max over the ranks of `group` of t (t itself when group is None)."""
    if group is None:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return t


def all_count(n: int, group: Any, device: torch.device) -> int:
    """Σ over the ranks of the whole number n."""
    if group is None:
        return n
    return int(all_sum(torch.tensor([n], dtype=torch.int64, device=device), group).item())


def world_size(group: Any) -> int:
    return 1 if group is None else dist.get_world_size(group)


class _ScaleGradient(torch.autograd.Function):
    """t in forward; the gradient times `factor` in backward."""

    @staticmethod
    def forward(t, factor):
        return t.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.factor = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def undo_gradient_average(t: torch.Tensor, group: Any) -> torch.Tensor:
    """t in forward; in backward the gradient times the world size W of `group`.

    DistributedDataParallel averages parameter gradients over the ranks. For a value that
    is already global (every rank holds it, and each rank's backward gives exactly its share
    ∂(value)/∂(local inputs)), the right parameter gradient is the sum of the shares: W times
    their average. t itself when group is None or W = 1.
    """
    W = world_size(group)
    return t if W == 1 else _ScaleGradient.apply(t, W)
