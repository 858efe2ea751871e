"""The bad inputs tried on mutual information and its metrics, and the dtype mixes taken."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from infonorm import MMILoss, entropies, matched_accuracy
from infonorm import mutual_information as mutual_information_fn
from tests.cases import ApiCase, randn, with_value

_Z = randn(6, 4)
_Y = torch.tensor([0, 1, 2, 3, 0, 1])
_ROWS = torch.full((6, 2), 0.5)
# 6144 entries of 2^-12 and zeros: rows over C = 10000 that sum to 1.5 exactly in bfloat16
_ROWS_OF_1_5 = torch.zeros(6, 10000, dtype=torch.bfloat16)
_ROWS_OF_1_5[:, :6144] = 2.0**-12


def _mi(input: Any = None, target: Any = None, **kw: Any) -> Callable[[], Any]:
    def call() -> Any:
        return mutual_information_fn(
            _Z if input is None else input, _Y if target is None else target, **kw
        )

    return call


CASES: list[ApiCase] = [
    ApiCase(
        "mutual_information",
        "input a list",
        _mi(input=[[0.0, 1.0]], target=torch.tensor([0])),
        TypeError,
        "input must be a torch.Tensor, got list",
    ),
    ApiCase(
        "mutual_information",
        "input an int64 tensor",
        _mi(input=torch.zeros(6, 4, dtype=torch.int64)),
        TypeError,
        "input must be a floating-point tensor, got dtype torch.int64",
    ),
    ApiCase(
        "mutual_information",
        "input a complex tensor",
        _mi(input=torch.zeros(6, 4, dtype=torch.complex64)),
        TypeError,
        "input must be a floating-point tensor, got dtype torch.complex64",
    ),
    ApiCase(
        "mutual_information",
        "input 1-D",
        _mi(input=torch.zeros(6)),
        ValueError,
        "input must be (B, C) logits or (B, C, d1, …), got shape (6,)",
    ),
    ApiCase(
        "mutual_information",
        "input 1-D with probs=True",
        _mi(input=torch.full((6,), 0.25), probs=True),
        ValueError,
        "input must be (B, C) probabilities Q(ŷ|x) or (B, C, d1, …), got shape (6,)",
    ),
    ApiCase(
        "mutual_information",
        "input (6, 4, 1) with target (6,)",
        _mi(input=torch.full((6, 4, 1), 0.25), probs=True),
        ValueError,
        "target must be (B, d1) class indices or (B, C_y, d1) rows Pop(y|x) for input of "
        "shape (6, 4, 1), got shape (6,)",
    ),
    ApiCase(
        "mutual_information",
        "input (6, 4, 3) with class indices (6, 2)",
        _mi(input=randn(6, 4, 3), target=torch.zeros(6, 2, dtype=torch.int64)),
        ValueError,
        "target has shape (6, 2) but input of shape (6, 4, 3) needs class indices of shape (6, 3)",
    ),
    ApiCase(
        "mutual_information",
        "input (6, 4, 3) with label rows (6, 2, 2)",
        _mi(input=randn(6, 4, 3), target=torch.full((6, 2, 2), 0.5)),
        ValueError,
        "target has shape (6, 2, 2) but input of shape (6, 4, 3) needs rows of shape (B, C_y, 3)",
    ),
    ApiCase(
        "mutual_information",
        "input (6, 4, 3) with float class indices (6, 3)",
        _mi(input=randn(6, 4, 3), target=torch.zeros(6, 3)),
        TypeError,
        "target of shape (B, d1) must hold integer class indices, got dtype torch.float32",
    ),
    ApiCase(
        "mutual_information",
        "input (0, 4): an empty batch",
        _mi(input=torch.zeros(0, 4), target=torch.zeros(0, dtype=torch.int64)),
        ValueError,
        "input is an empty batch (B = 0): I(y; ŷ) needs at least one example",
    ),
    ApiCase(
        "mutual_information",
        "input (6, 0): no classes",
        _mi(input=torch.zeros(6, 0)),
        ValueError,
        "input has no classes (C = 0)",
    ),
    ApiCase(
        "mutual_information",
        "probs = 1",
        _mi(probs=1),
        TypeError,
        "probs must be True or False, got int",
    ),
    ApiCase(
        "mutual_information",
        "logits with a NaN",
        _mi(input=with_value(_Z, (3, 2), math.nan)),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "mutual_information",
        "logits with a +inf",
        _mi(input=with_value(_Z, (3, 2), math.inf)),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "mutual_information",
        "logits with a row of only −inf",
        _mi(input=with_value(_Z, (3,), -math.inf)),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "mutual_information",
        "probabilities with a NaN",
        _mi(input=with_value(torch.full((6, 4), 0.25), (1, 0), math.nan), probs=True),
        ValueError,
        "input holds NaN",
    ),
    ApiCase(
        "mutual_information",
        "probabilities with a negative entry",
        _mi(input=torch.tensor([[1.5, -0.5], [0.5, 0.5]]), target=torch.tensor([0, 1]), probs=True),
        ValueError,
        "input holds negative values: rows must be probabilities",
    ),
    ApiCase(
        "mutual_information",
        "probabilities whose rows sum to 1.2",
        _mi(input=torch.full((6, 4), 0.3), probs=True),
        ValueError,
        "input rows must sum to 1, but row 0 sums to 1.2",
    ),
    ApiCase(
        "mutual_information",
        "probabilities with an inf",
        _mi(input=with_value(torch.full((6, 4), 0.25), (0, 0), math.inf), probs=True),
        ValueError,
        "input rows must sum to 1, but row 0 sums to inf",
    ),
    ApiCase(
        "mutual_information",
        "target a NumPy array",
        _mi(target=np.array([0, 1, 2, 3, 0, 1])),
        TypeError,
        "target must be a torch.Tensor, got ndarray",
    ),
    ApiCase(
        "mutual_information",
        "target on meta, input on cpu",
        _mi(target=_Y.to("meta")),
        ValueError,
        "target is on meta but input is on cpu",
    ),
    ApiCase(
        "mutual_information",
        "input on meta, target on cpu",
        _mi(input=_Z.to("meta")),
        ValueError,
        "input is on the meta device: I(y; ŷ) needs its values",
    ),
    ApiCase(
        "mutual_information",
        "input and target on meta",
        _mi(input=_Z.to("meta"), target=_Y.to("meta")),
        ValueError,
        "input is on the meta device: I(y; ŷ) needs its values",
    ),
    ApiCase(
        "mutual_information",
        "input a sparse tensor",
        _mi(input=_Z.to_sparse()),
        TypeError,
        "input must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "mutual_information",
        "target a sparse tensor",
        _mi(target=_Y.to_sparse()),
        TypeError,
        "target must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "mutual_information",
        "target (B,) float32",
        _mi(target=_Y.float()),
        TypeError,
        "target of shape (B,) must hold integer class indices, got dtype torch.float32",
    ),
    ApiCase(
        "mutual_information",
        "target (B,) bool",
        _mi(target=_Y > 0),
        TypeError,
        "target of shape (B,) must hold integer class indices, got dtype torch.bool",
    ),
    ApiCase(
        "mutual_information",
        "target 0-d",
        _mi(target=torch.tensor(1)),
        ValueError,
        "target must be (B,) class indices or (B, C_y) rows Pop(y|x), got shape ()",
    ),
    ApiCase(
        "mutual_information",
        "target 3-D",
        _mi(target=torch.zeros(6, 2, 2)),
        ValueError,
        "target must be (B,) class indices or (B, C_y) rows Pop(y|x), got shape (6, 2, 2)",
    ),
    ApiCase(
        "mutual_information",
        "target of 3 labels for B = 6",
        _mi(target=_Y[:3]),
        ValueError,
        "target has 3 labels but input has B = 6 rows",
    ),
    ApiCase(
        "mutual_information",
        "target label 4 for C = 4",
        _mi(target=with_value(_Y, (1,), 4)),
        ValueError,
        "target holds label 4, outside [0, 4) (input has C = 4)",
    ),
    ApiCase(
        "mutual_information",
        "target label −1",
        _mi(target=with_value(_Y, (1,), -1)),
        ValueError,
        "target holds label -1, outside [0, 4) (input has C = 4)",
    ),
    ApiCase(
        "mutual_information",
        "target label 2**40",
        _mi(target=with_value(_Y, (1,), 2**40)),
        ValueError,
        "target holds label 1099511627776, outside [0, 4) (input has C = 4)",
    ),
    ApiCase(
        "mutual_information",
        "target rows (B, C_y) of int64",
        _mi(target=torch.zeros(6, 2, dtype=torch.int64)),
        TypeError,
        "target of shape (B, C_y) must hold probabilities Pop(y|x), got dtype torch.int64",
    ),
    ApiCase(
        "mutual_information",
        "every label ignore_index (−100)",
        _mi(target=torch.full((6,), -100)),
        ValueError,
        "target: every example is ignore_index (-100): I(y; ŷ) needs at least one example",
    ),
    ApiCase(
        "mutual_information",
        "ignore_index = 1.5",
        _mi(ignore_index=1.5),
        TypeError,
        "ignore_index must be an int, got float",
    ),
    ApiCase(
        "mutual_information",
        "ignore_index = 2**63 (beyond int64)",
        _mi(ignore_index=2**63),
        ValueError,
        "ignore_index must fit in int64 (labels are compared as int64), got 9223372036854775808",
    ),
    ApiCase(
        "MMILoss",
        "ignore_index = 10**400",
        lambda: MMILoss(ignore_index=10**400)(_Z, _Y),
        ValueError,
        "ignore_index must fit in int64 (labels are compared as int64), got an integer beyond it",
    ),
    ApiCase(
        "entropies",
        "ignore_index = -(2**63) - 1",
        lambda: entropies(_Z, _Y, ignore_index=-(2**63) - 1),
        ValueError,
        "ignore_index must fit in int64",
    ),
    ApiCase(
        "mutual_information",
        "validate=False, target label 4 for C = 4 (a device-side assertion)",
        _mi(target=with_value(_Y, (1,), 4), validate=False),
        RuntimeError,
        "target holds a label outside [0, C) that is not ignore_index",
    ),
    ApiCase(
        "mutual_information",
        "validate = 1",
        _mi(validate=1),
        TypeError,
        "validate must be True, False or None, got int",
    ),
    ApiCase(
        "mutual_information",
        "backend = 'cuda'",
        _mi(backend="cuda"),
        ValueError,
        "backend must be one of 'auto', 'torch', 'triton'; got 'cuda'",
    ),
    ApiCase(
        "mutual_information",
        "backend = 'triton' with probabilities",
        _mi(input=torch.full((6, 4), 0.25), probs=True, backend="triton"),
        ValueError,
        "backend='triton' computes class-index targets with float32, bfloat16 or float16 "
        "logits; use backend='torch' (or 'auto') for probabilities",
    ),
    ApiCase(
        "mutual_information",
        "backend = 'triton' with label rows",
        _mi(target=_ROWS, backend="triton"),
        ValueError,
        "backend='triton' computes class-index targets with float32, bfloat16 or float16 "
        "logits; use backend='torch' (or 'auto') for label rows",
    ),
    ApiCase(
        "mutual_information",
        "target rows of 4 rows for B = 6",
        _mi(target=_ROWS[:4]),
        ValueError,
        "target has 4 rows but input has B = 6 rows",
    ),
    ApiCase(
        "mutual_information",
        "target rows (6, 0)",
        _mi(target=torch.zeros(6, 0)),
        ValueError,
        "target has no label classes (C_y = 0)",
    ),
    ApiCase(
        "mutual_information",
        "target rows summing to 1.4",
        _mi(target=torch.full((6, 2), 0.7)),
        ValueError,
        "target rows must sum to 1, but row 0 sums to 1.4",
    ),
    ApiCase(
        "mutual_information",
        "bfloat16 probabilities, C = 10000, rows summing to 1.5",
        _mi(input=_ROWS_OF_1_5, target=torch.arange(6), probs=True),
        ValueError,
        "input rows must sum to 1, but row 0 sums to 1.5",
    ),
    ApiCase(
        "mutual_information",
        "bfloat16 target rows summing to 1.5",
        _mi(target=torch.tensor([[1.0, 0.5]] * 6, dtype=torch.bfloat16)),
        ValueError,
        "target rows must sum to 1, but row 0 sums to 1.5 (tolerance 0.016 for torch.bfloat16)",
    ),
    ApiCase(
        "mutual_information",
        "target rows with a NaN",
        _mi(target=with_value(_ROWS, (2, 1), math.nan)),
        ValueError,
        "target holds NaN",
    ),
    ApiCase(
        "mutual_information",
        "target rows with a negative entry",
        _mi(target=torch.tensor([[1.5, -0.5]] * 6)),
        ValueError,
        "target holds negative values: rows must be probabilities",
    ),
    ApiCase(
        "mutual_information",
        "group given without torch.distributed",
        _mi(group=object()),
        ValueError,
        "group: ",
    ),
    ApiCase(
        "MMILoss",
        "target (B,) float32",
        lambda: MMILoss()(_Z, _Y.float()),
        TypeError,
        "target of shape (B,) must hold integer class indices, got dtype torch.float32",
    ),
    ApiCase(
        "MMILoss",
        "MMILoss('mean')",
        lambda: MMILoss("mean"),
        ValueError,
        "MMILoss has no reduction (got 'mean'): I(y; ŷ) is a statistic of the whole batch",
    ),
    ApiCase(
        "MMILoss",
        "MMILoss(reduction='sum')",
        lambda: MMILoss(reduction="sum"),
        ValueError,
        "MMILoss has no reduction (got reduction='sum'): I(y; ŷ) is a statistic of the whole batch",
    ),
    ApiCase(
        "entropies",
        "every label ignore_index (−100)",
        lambda: entropies(_Z, torch.full((6,), -100)),
        ValueError,
        "target: every example is ignore_index (-100): I(y; ŷ) needs at least one example",
    ),
    ApiCase(
        "entropies",
        "target of 3 labels for B = 6",
        lambda: entropies(_Z, _Y[:3]),
        ValueError,
        "target has 3 labels but input has B = 6 rows",
    ),
    ApiCase(
        "entropies",
        "probs = 0",
        lambda: entropies(torch.full((6, 4), 0.25), _Y, probs=0),
        TypeError,
        "probs must be True or False, got int",
    ),
    ApiCase(
        "entropies",
        "logits all NaN",
        lambda: entropies(torch.full((6, 4), math.nan), _Y),
        ValueError,
        "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined",
        from_forward=True,
    ),
    ApiCase(
        "matched_accuracy",
        "pred of 2 examples, target of 3",
        lambda: matched_accuracy([0, 1], [0, 1, 1]),
        ValueError,
        "pred has 2 examples but target has 3",
    ),
    ApiCase(
        "matched_accuracy",
        "pred = []",
        lambda: matched_accuracy([], []),
        ValueError,
        "pred is empty: at least one example is needed",
    ),
    ApiCase(
        "matched_accuracy",
        "pred = None",
        lambda: matched_accuracy(None, [0, 1]),
        ValueError,
        "pred must be (B,) class indices or (B, C) scores, got shape ()",
    ),
    ApiCase(
        "matched_accuracy",
        "pred (B,) floats",
        lambda: matched_accuracy([0.5, 1.0], [0, 1]),
        TypeError,
        "pred must hold integer class indices, got dtype float64",
    ),
    ApiCase(
        "matched_accuracy",
        "pred (B,) bools",
        lambda: matched_accuracy([True, False], [0, 1]),
        TypeError,
        "pred must hold integer class indices, got dtype bool",
    ),
    ApiCase(
        "matched_accuracy",
        "pred strings",
        lambda: matched_accuracy(["a", "b"], [0, 1]),
        TypeError,
        "pred must hold integer class indices, got dtype <U1",
    ),
    ApiCase(
        "matched_accuracy",
        "pred 3-D",
        lambda: matched_accuracy([[[0]]], [0]),
        ValueError,
        "pred must be (B,) class indices or (B, C) scores, got shape (1, 1, 1)",
    ),
    ApiCase(
        "matched_accuracy",
        "pred scores (2, 0)",
        lambda: matched_accuracy(np.zeros((2, 0)), [0, 1]),
        ValueError,
        "pred scores have no classes (shape (2, 0))",
    ),
    ApiCase(
        "matched_accuracy",
        "pred float scores (2, 1): a single class",
        lambda: matched_accuracy(torch.tensor([[0.3], [0.9]]), [0, 1]),
        ValueError,
        "pred scores of shape (2, 1) have a single class, so their argmax is always 0",
    ),
    ApiCase(
        "matched_accuracy",
        "pred scores with a NaN",
        lambda: matched_accuracy(np.array([[0.0, math.nan], [1.0, 0.0]]), [0, 1]),
        ValueError,
        "pred holds NaN",
    ),
    ApiCase(
        "matched_accuracy",
        "pred scores complex",
        lambda: matched_accuracy(np.ones((2, 2), dtype=np.complex64), [0, 1]),
        TypeError,
        "pred scores must be real numbers, got dtype complex64",
    ),
    ApiCase(
        "matched_accuracy",
        "pred a ragged list [[0, 1], [2]]",
        lambda: matched_accuracy([[0, 1], [2]], [0, 1]),
        ValueError,
        "pred must be (B,) class indices or (B, C) scores, got a ragged sequence",
    ),
    ApiCase(
        "matched_accuracy",
        "target a ragged list [0, [1]]",
        lambda: matched_accuracy([0, 1], [0, [1]]),
        ValueError,
        "target must be (B,) class indices, got a ragged sequence",
    ),
    ApiCase(
        "matched_accuracy",
        "pred on the meta device",
        lambda: matched_accuracy(torch.ones(2, device="meta"), [0, 1]),
        ValueError,
        "pred is on the meta device: its labels are needed",
    ),
    ApiCase(
        "matched_accuracy",
        "target a sparse tensor",
        lambda: matched_accuracy([0, 1], torch.tensor([0, 1]).to_sparse()),
        TypeError,
        "target must be a dense tensor, got layout torch.sparse_coo",
    ),
    ApiCase(
        "matched_accuracy",
        "target 2-D",
        lambda: matched_accuracy([0], [[0, 1]]),
        ValueError,
        "target must be (B,) class indices, got shape (1, 2)",
    ),
]


@dataclass(frozen=True)
class MutualInformationDtypes:
    """mutual_information(input, target): the value's and the gradient's dtype."""

    input: torch.dtype
    target: str  # "int64 indices", "int32 indices", "float64 rows", …
    value: torch.dtype
    grad: torch.dtype


MUTUAL_INFORMATION_DTYPES = [
    MutualInformationDtypes(torch.float32, "int64 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "int32 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "int16 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "int8 indices", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float32, "uint8 indices", torch.float32, torch.float32),
    MutualInformationDtypes(
        torch.float32, "uint8 indices up to 255, C = 256", torch.float32, torch.float32
    ),
    MutualInformationDtypes(
        torch.float32, "int8 indices up to 127, C = 128", torch.float32, torch.float32
    ),
    MutualInformationDtypes(
        torch.float32, "int16 indices up to 32767, C = 32768", torch.float32, torch.float32
    ),
    MutualInformationDtypes(torch.bfloat16, "int64 indices", torch.bfloat16, torch.bfloat16),
    MutualInformationDtypes(torch.float16, "int64 indices", torch.float16, torch.float16),
    MutualInformationDtypes(torch.float64, "int64 indices", torch.float64, torch.float64),
    MutualInformationDtypes(torch.float32, "float64 rows", torch.float32, torch.float32),
    MutualInformationDtypes(torch.float64, "float32 rows", torch.float64, torch.float64),
    MutualInformationDtypes(torch.bfloat16, "float32 rows", torch.bfloat16, torch.bfloat16),
    MutualInformationDtypes(torch.float32, "bfloat16 rows", torch.float32, torch.float32),
]
