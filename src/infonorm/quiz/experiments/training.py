"""Full-batch training by either objective, recording I(y; ŷ) and the cross-entropy.

Both objectives see the same logits z = f(x): cross-entropy minimizes −(1/B) Σ_b ln Q(y_b|x_b),
MMI maximizes I(y; ŷ) (minimizes `MMILoss`). Whichever is trained, both are recorded, so that
the curves show what each objective does to the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from infonorm._threads import one_thread
from infonorm.mutual_information import MMILoss, mutual_information

OBJECTIVES = ("cross_entropy", "mmi")


@dataclass
class Curve:
    """I(y; ŷ) and cross-entropy (nats) on the training batch at a subsample of steps."""

    steps: list[int]
    mutual_information: list[float]
    cross_entropy: list[float]


def loss_function(objective: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if objective == "cross_entropy":
        return F.cross_entropy
    if objective == "mmi":
        return MMILoss()
    raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")


def recorded_steps(steps: int, points: int) -> set[int]:
    """About `points` steps from 0 to `steps` (the state after the last update) inclusive."""
    return set(np.linspace(0, steps, min(points, steps + 1)).round().astype(int).tolist())


def train(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    objective: str,
    *,
    steps: int,
    lr: float,
    points: int = 40,
) -> Curve:
    """Adam on the whole batch (x, target) for `steps` updates of `model` (in place)."""
    loss = loss_function(objective)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    keep = recorded_steps(steps, points)
    curve = Curve([], [], [])
    with one_thread():
        for step in range(steps + 1):
            z = model(x)
            if step in keep:
                _record(curve, step, z.detach(), target)
            if step == steps:
                break
            optimizer.zero_grad()
            loss(z, target).backward()
            optimizer.step()
    return curve


def _record(curve: Curve, step: int, z: torch.Tensor, target: torch.Tensor) -> None:
    curve.steps.append(step)
    curve.mutual_information.append(mutual_information(z, target).item())
    curve.cross_entropy.append(F.cross_entropy(z, target).item())
