"""Whole-layer statistics of a layer split along t across gloo processes."""

import pytest
import torch
import torch.distributed as dist

from infonorm.layer_norm import layer_norm
from tests._distributed import run_ranks

F64 = torch.float64


def _problem(T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, T, 5, generator=g, dtype=F64) * 3 + 1
    A = torch.randn(5, generator=g, dtype=F64)
    B = torch.randn(5, generator=g, dtype=F64)
    dy = torch.randn(2, T, 5, generator=g, dtype=F64)
    return x, A, B, dy


def _gradients(x, A, B, dy, *, group=None, activation="gelu", eps=1e-5):
    x, A, B = (t.clone().requires_grad_() for t in (x, A, B))
    y = layer_norm(x, A, B, scope="layer", activation=activation, eps=eps, group=group)
    (y * dy).sum().backward()
    return y.detach(), x.grad, A.grad, B.grad


def _rank_slice(rank: int, splits: list[int]) -> slice:
    start = sum(splits[:rank])
    return slice(start, start + splits[rank])


def _sharded(rank, world, splits, activation, eps):
    x, A, B, dy = _problem(sum(splits))
    part = _rank_slice(rank, splits)
    return _gradients(
        x[:, part], A, B, dy[:, part], group=dist.group.WORLD, activation=activation, eps=eps
    )


@pytest.mark.parametrize(
    ("splits", "activation", "eps"),
    [
        ([4, 3], "gelu", 1e-5),
        ([2, 0, 5], "relu", 0.0),
        ([6], "tanh", 1e-5),
        ([1, 1, 2, 3], "silu", 1e-5),
    ],
    ids=["two-uneven", "three-with-empty", "world-1", "four"],
)
def test_sharded_layer_equals_unsplit_layer(splits, activation, eps):
    x, A, B, dy = _problem(sum(splits))
    y, dx, dA, dB = _gradients(x, A, B, dy, activation=activation, eps=eps)
    results = run_ranks(_sharded, len(splits), splits, activation, eps)
    for rank, (y_r, dx_r, _, _) in enumerate(results):
        part = _rank_slice(rank, splits)
        torch.testing.assert_close(y_r, y[:, part], rtol=0, atol=1e-9)
        torch.testing.assert_close(dx_r, dx[:, part], rtol=0, atol=1e-9)
    # A.grad and B.grad are each rank's part of the sum over t
    torch.testing.assert_close(sum(r[2] for r in results), dA, rtol=0, atol=1e-9)
    torch.testing.assert_close(sum(r[3] for r in results), dB, rtol=0, atol=1e-9)


def _second_derivative_across_the_group(rank, world):
    x, A, B, _ = _problem(4)
    x.requires_grad_()
    y = layer_norm(x, A, B, scope="layer", activation="tanh", group=dist.group.WORLD)
    try:
        # the first derivative, recorded for a second one
        torch.autograd.grad(y.sum(), x, create_graph=True)
    except RuntimeError as error:
        return str(error)
    return None


def test_second_derivatives_across_a_group_raise_a_clear_error():
    (message,) = run_ranks(_second_derivative_across_the_group, 1)
    assert message is not None
    assert message.startswith("layer_norm(..., group=...) is differentiable once")
