"""MMI and cross-entropy from many random initializations on a separable binary problem.

The population: points x in the plane labeled y = 1 on one side of a line through the
origin, y = 0 on the other, with a band of half-width `margin` around the line left empty,
so that y is a function of x and a linear classifier can be perfect. Each seed draws one
initialization of a linear classifier z = x W + b (two logits) and trains it twice from
there, once per objective. A run ends as a predictor (accuracy 1), an anti-predictor
(accuracy 0: every label swapped, the binary relabeling) or neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from infonorm.metrics import entropies
from infonorm.mutual_information import mutual_information
from infonorm.quiz.experiments.training import OBJECTIVES, Curve, train

Track = Callable[[Iterable, str], Iterable]
OUTCOMES = ("predictor", "anti-predictor", "neither")
# the normal of the separating line, and the fraction of examples on its positive side
NORMAL = (0.8, -0.6)


@dataclass
class BinaryRun:
    seed: int
    objective: str
    outcome: str
    accuracy: float
    mutual_information: float
    cross_entropy: float
    curve: Curve


@dataclass
class BinaryExperiment:
    n: int
    margin: float
    steps: int
    H_y: float
    runs: list[BinaryRun] = field(default_factory=list)

    def counts(self, objective: str) -> dict[str, int]:
        """How many runs of `objective` ended as each outcome."""
        outcomes = [run.outcome for run in self.runs if run.objective == objective]
        return {outcome: outcomes.count(outcome) for outcome in OUTCOMES}


def separable_binary(
    generator: torch.Generator, n: int, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """n points of N(0, I) in the plane at distance > margin from the line, and their labels."""
    normal = torch.tensor(NORMAL)
    x = torch.empty(0, 2)
    while x.shape[0] < n:
        draw = torch.randn(2 * n, 2, generator=generator)
        x = torch.cat([x, draw[(draw @ normal).abs() > margin]])
    x = x[:n]
    return x, (x @ normal > 0).long()


def outcome(accuracy: float) -> str:
    """A perfect predictor, a perfect anti-predictor, or neither (1% of slack each way)."""
    if accuracy >= 0.99:
        return "predictor"
    if accuracy <= 0.01:
        return "anti-predictor"
    return "neither"


def run_binary(
    seeds: int,
    *,
    seed: int,
    n: int = 200,
    margin: float = 0.3,
    steps: int = 200,
    lr: float = 0.1,
    track: Track = lambda items, _description: items,
) -> BinaryExperiment:
    """Train `seeds` initializations by both objectives; deterministic given `seed`."""
    generator = torch.Generator().manual_seed(seed)
    x, y = separable_binary(generator, n, margin)
    experiment = BinaryExperiment(
        n, margin, steps, entropies(F.one_hot(y, 2).float(), y).H_y.item()
    )
    # one initialization per seed, drawn in order: run i is the same whatever `seeds` is
    initializations = [torch.randn(2, 3, generator=generator) for _ in range(seeds)]
    for index, init in enumerate(track(initializations, "P2 binary: seeds")):
        for objective in OBJECTIVES:
            model = _linear(init)
            curve = train(model, x, y, objective, steps=steps, lr=lr)
            with torch.no_grad():
                experiment.runs.append(_summary(index, objective, model(x), y, curve))
    return experiment


def _linear(init: torch.Tensor) -> nn.Linear:
    """z = x Wᵀ + b with [W | b] = init, shape (2, 3)."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(init[:, :2])
        model.bias.copy_(init[:, 2])
    return model


def _summary(
    seed: int, objective: str, z: torch.Tensor, y: torch.Tensor, curve: Curve
) -> BinaryRun:
    accuracy = (z.argmax(1) == y).double().mean().item()
    return BinaryRun(
        seed=seed,
        objective=objective,
        outcome=outcome(accuracy),
        accuracy=accuracy,
        mutual_information=mutual_information(z, y).item(),
        cross_entropy=F.cross_entropy(z, y).item(),
        curve=curve,
    )
