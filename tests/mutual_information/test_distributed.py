"""I(y; ŷ) of a batch split across gloo processes, and a DDP step with MMILoss.

Spawning ranks costs about a second, so each spawn checks many problems at once.
"""

import functools
import re

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from infonorm.mutual_information import MMILoss, mutual_information
from tests._distributed import run_ranks

F64 = torch.float64
# the quiz's example: the batch's I(y; ŷ) and the mean of the MIs of shards {0, 2}, {1, 3}
QUIZ_Q = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]]
QUIZ_Y = [0, 0, 1, 1]
QUIZ_SHARDS = [[0, 2], [1, 3]]


# ---------------------------------------------------------------------------- problems


def _problem(name: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(input, target, probs) in float64, the same in every process."""
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    if name == "quiz":
        return torch.tensor(QUIZ_Q, dtype=F64), torch.tensor(QUIZ_Y), True
    if name == "indices, logits":
        # label 4 of C = 5 in no example
        return 3 * torch.randn(13, 5, generator=g, dtype=F64), _labels(13, 4, g), False
    if name == "indices, probs":
        Q = torch.softmax(2 * torch.randn(13, 6, generator=g, dtype=F64), 1)
        Q[:4, :2] = 0  # exact zeros, and every example predicts column 5 a little
        return Q / Q.sum(1, keepdim=True), _labels(13, 6, g), True
    if name == "indices, mostly alone":
        # ten labels of one example and label 7 of two, split between ranks 0 and 1 when
        # world = 2: each of its two ranks sees it alone, the batch sees it twice
        y = torch.tensor([0, 3, 5, 7, 7, 9, 11, 14, 20, 22, 30, 39])
        return 3 * torch.randn(12, 40, generator=g, dtype=F64), y, False
    if name == "indices, some ignored":
        # every third example ignored, and (world = 2) all of rank 0's first four but one
        y = _labels(17, 5, g)
        y[::3] = -100
        y[1] = -100
        return 3 * torch.randn(17, 5, generator=g, dtype=F64), y, False
    if name == "uint8 indices, C = 256":
        # labels up to 255 (and 156, which is −100 in uint8): compared in int64, not wrapped
        y = torch.tensor([255, 255, 156, 3, 3, 0, 200, 255, 156], dtype=torch.uint8)
        return 3 * torch.randn(9, 256, generator=g, dtype=F64), y, False
    if name == "rows, logits":
        # label rows over C_y = 6 with label 5 in no example
        Pop = torch.softmax(torch.randn(11, 6, generator=g, dtype=F64), 1)
        Pop[:, 5] = 0
        return torch.randn(11, 4, generator=g, dtype=F64), Pop / Pop.sum(1, keepdim=True), False
    if name == "rows, probs":
        Q = torch.softmax(torch.randn(11, 5, generator=g, dtype=F64), 1)
        Pop = torch.softmax(torch.randn(11, 3, generator=g, dtype=F64), 1)
        Q[2:5, 1] = 0
        Pop[6:, 0] = 0
        return Q / Q.sum(1, keepdim=True), Pop / Pop.sum(1, keepdim=True), True
    raise AssertionError(name)


def _labels(B: int, C: int, g: torch.Generator) -> torch.Tensor:
    """Labels in [0, C), sorted: contiguous shards then hold different labels."""
    return torch.randint(0, C, (B,), generator=g).sort().values


PROBLEMS = (
    "quiz",
    "indices, logits",
    "indices, probs",
    "indices, mostly alone",
    "indices, some ignored",
    "uint8 indices, C = 256",
    "rows, logits",
    "rows, probs",
)
# shard sizes by world size, the last taking the rest: uneven, and one empty with 3 ranks
SIZES = {1: [], 2: [4], 3: [5, 0], 4: [1, 3, 2]}


def _shards(name: str, world: int) -> list[list[int]]:
    """Each rank's rows of the problem's batch."""
    if name == "quiz" and world == 2:
        return QUIZ_SHARDS
    B = _problem(name)[0].shape[0]
    starts = [min(sum(SIZES[world][:rank]), B) for rank in range(world)] + [B]
    return [list(range(starts[rank], starts[rank + 1])) for rank in range(world)]


def _training_problem():
    """(x, y, model): 14 examples of 6 features, 3 labels, a linear model to 4 outputs."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(14, 6, generator=g, dtype=F64)
    y = torch.randint(0, 3, (14,), generator=g)
    torch.manual_seed(0)
    return x, y, torch.nn.Linear(6, 4, dtype=F64)


def _sgd_step(model, loss):
    """(loss value, parameter gradients, parameters after one SGD step)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss.backward()
    gradients = [p.grad.clone() for p in model.parameters()]
    optimizer.step()
    return loss.detach(), gradients, [p.detach().clone() for p in model.parameters()]


def _information(input, target, probs, group=None):
    """(I, ∂I/∂input)."""
    input = input.clone().requires_grad_()
    information = mutual_information(input, target, probs=probs, group=group)
    (gradient,) = torch.autograd.grad(information, input)
    return information.detach(), gradient


# ---------------------------------------------------------------------------- rank functions


def _sharded(rank, world):
    """{problem: (I, ∂I/∂rows)} of this rank's rows of every problem."""
    results = {}
    for name in PROBLEMS:
        input, target, probs = _problem(name)
        rows = _shards(name, world)[rank]
        results[name] = _information(input[rows], target[rows], probs, dist.group.WORLD)
    return results


@functools.cache
def _sharded_results(world: int) -> list[dict]:
    """Each rank's `_sharded`, one spawn per world size for all tests."""
    return run_ranks(_sharded, world)


def _ddp_step(rank, world, shards):
    x, y, model = _training_problem()
    rows = shards[rank]
    ddp = DistributedDataParallel(model)
    return _sgd_step(ddp, MMILoss(dist.group.WORLD)(ddp(x[rows]), y[rows]))


def _refusals(rank, world):
    """The message of the ValueError each call raises on this rank (None if none)."""
    group = dist.group.WORLD
    calls = {
        "classes": lambda: mutual_information(
            torch.zeros(2, 3 + rank), torch.tensor([0, 1]), group=group
        ),
        "kinds": lambda: mutual_information(
            torch.zeros(2, 3),
            torch.tensor([0, 1]) if rank == 0 else torch.full((2, 3), 1 / 3),
            group=group,
        ),
        "empty": lambda: mutual_information(
            torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), group=group
        ),
    }
    messages = dict.fromkeys([*calls, "ignored", "twice"])
    for name, call in calls.items():
        try:
            call()
        except ValueError as error:
            messages[name] = str(error)
    # every example ignored, on rank 0 and none on rank 1: the batch's N = 0
    empty_here = torch.zeros(0, dtype=torch.int64)
    try:
        y = torch.full((3,), -100) if rank == 0 else empty_here
        mutual_information(torch.zeros(y.shape[0], 3), y, group=group)
    except ValueError as error:
        messages["ignored"] = str(error)
    # differentiating twice with a group is refused by name, never silently zero
    z = torch.randn(4, 3, dtype=F64, requires_grad=True)
    information = mutual_information(z, torch.tensor([0, 1, 1, 2]), group=group)
    try:
        torch.autograd.grad(information, z, create_graph=True)
    except RuntimeError as error:
        messages["twice"] = str(error)
    return messages


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_every_rank_gets_the_batch_value_and_its_rows_gradient(world):
    results = _sharded_results(world)
    for name in PROBLEMS:
        information, gradient = _information(*_problem(name))
        for rank, rows in enumerate(_shards(name, world)):
            information_r, gradient_r = results[rank][name]
            torch.testing.assert_close(information_r, information, rtol=0, atol=1e-9)
            torch.testing.assert_close(gradient_r, gradient[rows], rtol=0, atol=1e-9)


def test_shards_of_the_quiz_example_get_the_batch_value_not_the_mean_of_theirs():
    Q, y, _ = _problem("quiz")
    batch = mutual_information(Q, y, probs=True)
    separately = [mutual_information(Q[rows], y[rows], probs=True) for rows in QUIZ_SHARDS]
    assert batch.item() == pytest.approx(0.1308, abs=5e-5)
    assert [value.item() for value in separately] == pytest.approx([0.2754, 0.0462], abs=5e-5)
    assert sum(separately).item() / 2 == pytest.approx(0.1608, abs=5e-5)
    # each of the two ranks holds one shard, and gets the batch's value
    assert _shards("quiz", 2) == QUIZ_SHARDS
    for information, _ in (result["quiz"] for result in _sharded_results(2)):
        assert information.item() == pytest.approx(batch.item(), abs=1e-12)


def test_a_ddp_step_with_mmi_loss_is_the_full_batch_step():
    # three ranks, uneven, one of them with no example at all
    shards = [list(range(0, 5)), [], list(range(5, 14))]
    x, y, model = _training_problem()
    loss, gradients, parameters = _sgd_step(model, MMILoss()(model(x), y))
    for loss_r, gradients_r, parameters_r in run_ranks(_ddp_step, 3, shards):
        torch.testing.assert_close(loss_r, loss, rtol=0, atol=1e-12)
        for got, expected in zip(gradients_r + parameters_r, gradients + parameters, strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)


def test_ranks_that_disagree_or_hold_no_example_all_get_the_same_error():
    expected = {
        "classes": r"ranks disagree on input's classes C: \[3, 4\]",
        "kinds": r"ranks disagree on target's C_y \(0 for class indices\): \[0, 3\]",
        "empty": "input is empty on every rank of group",
        "ignored": r"^target: every example is ignore_index \(-100\)",
        "twice": "^mutual_information with a group cannot be differentiated twice",
    }
    for messages in run_ranks(_refusals, 2):
        for name, pattern in expected.items():
            assert messages[name] is not None, name
            assert re.search(pattern, messages[name]), messages[name]
