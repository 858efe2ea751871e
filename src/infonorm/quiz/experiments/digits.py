"""MMI and cross-entropy training of a linear classifier on scikit-learn's digits.

Multinomial logistic regression z = x Wᵀ + b on the 64 standardized pixels, 10 classes,
trained on a stratified split by either objective from the same random initialization.
MI is blind to which column means which digit, so MMI's columns come out permuted: its
accuracy is read under the best relabeling (`matched_accuracy`), and the relabeling and
both confusion matrices are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from infonorm.metrics import entropies, matched_accuracy
from infonorm.mutual_information import mutual_information
from infonorm.quiz.experiments.training import OBJECTIVES, Curve, train

Track = Callable[[Iterable, str], Iterable]
CLASSES = 10


@dataclass
class DigitsRun:
    seed: int
    objective: str
    train_mutual_information: float
    test_mutual_information: float
    test_cross_entropy: float
    raw_accuracy: float
    matched_accuracy: float
    mapping: dict[int, int]  # predicted column → digit, the relabeling found
    confusion: list[list[int]]  # [digit][predicted column], test set
    confusion_matched: list[list[int]]  # [digit][relabeled prediction]
    curve: Curve


@dataclass
class DigitsExperiment:
    train_size: int
    test_size: int
    steps: int
    H_y_test: float
    runs: list[DigitsRun] = field(default_factory=list)

    def of(self, objective: str) -> list[DigitsRun]:
        return [run for run in self.runs if run.objective == objective]


def digits_split(seed: int, test_size: float = 1 / 3) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test): stratified split, pixels standardized on train."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(x_train)
    return (
        torch.tensor(scaler.transform(x_train), dtype=torch.float32),
        torch.tensor(y_train),
        torch.tensor(scaler.transform(x_test), dtype=torch.float32),
        torch.tensor(y_test),
    )


def run_digits(
    seeds: int,
    *,
    seed: int,
    steps: int = 300,
    lr: float = 0.05,
    track: Track = lambda items, _description: items,
) -> DigitsExperiment:
    """Train `seeds` initializations by both objectives; deterministic given `seed`."""
    x_train, y_train, x_test, y_test = digits_split(seed % 2**32)
    H_y = entropies(F.one_hot(y_test, CLASSES).float(), y_test, probs=True).H_y.item()
    experiment = DigitsExperiment(len(y_train), len(y_test), steps, H_y)
    generator = torch.Generator().manual_seed(seed)
    features = x_train.shape[1]
    # weights of scale 1/sqrt(features): logits of order 1 at the start
    initializations = [
        torch.randn(CLASSES, features, generator=generator) / features**0.5 for _ in range(seeds)
    ]
    for index, init in enumerate(track(initializations, "P2 digits: seeds")):
        for objective in OBJECTIVES:
            model = nn.Linear(features, CLASSES)
            with torch.no_grad():
                model.weight.copy_(init)
                model.bias.zero_()
            curve = train(model, x_train, y_train, objective, steps=steps, lr=lr)
            with torch.no_grad():
                run = _evaluate(index, objective, model, (x_train, y_train, x_test, y_test), curve)
            experiment.runs.append(run)
    return experiment


def _evaluate(
    seed: int, objective: str, model: nn.Module, data: tuple[torch.Tensor, ...], curve: Curve
) -> DigitsRun:
    x_train, y_train, x_test, y_test = data
    z = model(x_test)
    predicted = z.argmax(1).numpy()
    truth = y_test.numpy()
    matched, mapping = matched_accuracy(predicted, truth)
    relabeled = np.array([mapping.get(int(c), -1) for c in predicted])
    labels = np.arange(CLASSES)
    return DigitsRun(
        seed=seed,
        objective=objective,
        train_mutual_information=mutual_information(model(x_train), y_train).item(),
        test_mutual_information=mutual_information(z, y_test).item(),
        test_cross_entropy=F.cross_entropy(z, y_test).item(),
        raw_accuracy=float((predicted == truth).mean()),
        matched_accuracy=matched,
        mapping=mapping,
        confusion=confusion_matrix(truth, predicted, labels=labels).tolist(),
        confusion_matched=confusion_matrix(truth, relabeled, labels=labels).tolist(),
        curve=curve,
    )
