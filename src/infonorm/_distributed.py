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


class _AllSum(torch.autograd.Function):
    """Σ over ranks in forward; in backward the gradient passes through unchanged.

    Every rank computes the same function of the summed tensor, so the upstream gradient
    is the same on every rank and ∂(that function)/∂(local part) equals it: passing it
    through gives each rank exactly the gradient of the global value with respect to its
    own inputs. (torch.distributed.nn's all_reduce sums the gradients over ranks instead,
    which is W times this.)
    """

    @staticmethod
    def forward(t, group):
        return all_sum(t, group)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def differentiable_all_sum(t: torch.Tensor, group: Any) -> torch.Tensor:
    """all_sum that autograd differentiates as above (t itself when group is None)."""
    return t if group is None else _AllSum.apply(t, group)
