"""Problem 2: the mutual information I(y; ŷ) between labels and predictions, as an objective.

For a batch of N examples with label rows Pop(y|x_b) (one-hot for class indices) and model
rows Q(ŷ|x_b), the plug-in estimate of the quiz's joint and its marginals is

    P(y, ŷ)  = (1/N) Σ_b Pop(y|x_b) Q(ŷ|x_b)
    Pop(y)   = (1/N) Σ_b Pop(y|x_b)
    P(ŷ)     = (1/N) Σ_b Q(ŷ|x_b)
    I(y; ŷ)  = Σ_{y,ŷ} P(y, ŷ) ln P(y, ŷ)/(Pop(y) P(ŷ))            (0 ln 0 = 0)

Everything is computed from unnormalized sums: S[k, c] = Σ_b Pop(k|x_b) Q(c|x_b),
n[k] = Σ_b Pop(k|x_b), s[c] = Σ_k S[k, c] and N, so that P(y=k, ŷ=c) = S[k, c]/N,
Pop(k) = n[k]/N, P(ŷ=c) = s[c]/N. With H(m) = ln N − (1/N) Σ m ln m for counts m summing to N,

    I = H(y) + H(ŷ) − H(y, ŷ) = ln N + (1/N) (Σ S ln S − Σ s ln s − Σ n ln n)

Holding Pop(y) fixed (it is data), the derivative is the pointwise mutual information
Λ[k, c] = ln P(y=k, ŷ=c)/(Pop(k) P(ŷ=c)) = ln (S[k, c]/s[c]) − ln (n[k]/N) of the labels,

    ∂I/∂Q[b, c] = (1/N) Σ_k Pop(k|x_b) Λ[k, c]             (= Λ[y_b, c]/N for an index y_b)

and through the softmax Q[b] = softmax(z[b]), with ḡ[b] = Σ_c Q[b, c] ∂I/∂Q[b, c],

    ∂I/∂z[b, c] = Q[b, c] (∂I/∂Q[b, c] − ḡ[b])

Layout of class-index targets. No shape depends on the labels' values, and nothing reads a
value on the host: each example b gets `rows[b]`, its row r ∈ [0, R) of S, −1 when it is
ignored (`ignore_index`, as in `F.cross_entropy`: left out of the batch's joint, N counts the
others), and −2 when it is alone with its label and the layout gives such examples no row.
Two layouts, chosen from the shapes and the backend only:
- every label k has row k (R = C): for the torch backend when C <= B, so that S is at most
  B × C;
- labels of two examples or more take rows 0, 1, … in the order of the labels, within a
  static bound R = max(1, min(B // 2, C)), and the rows past them stay 0: when C > B, or for
  the Triton kernels. An example alone with its label has S's row equal to its own Q[b], so
  its Σ_c Q ln Q follows from the logits, ln Q[b] = z[b] − logsumexp z[b], without a
  logarithm per entry; most examples are alone when C is large.
Label rows Pop(y|x) as targets take one row of S per label column. So memory beyond the
input and its gradient is O(R·C), never more than B × C (a C × C joint only when C <= B).

Backends. The forward's per-example sums (S, s, logsumexp z[b], the single examples'
Σ Q ln Q) and the backward's per-example gradient are computed by torch ops (chunk by chunk
of examples on CPU, to stay in cache), or by the Triton kernels of
`infonorm.kernels.mutual_information` (CUDA; CPU under TRITON_INTERPRET=1) for class-index
targets with logits. Everything between them (the rows, I, Λ, ln s) is the same torch code.

Operator. Without a group, `mutual_information` is one PyTorch operator,
`torch.ops.infonorm.mutual_information`, with a fake implementation and a registered
autograd formula whose backward is `torch.ops.infonorm.mutual_information_backward`:
torch.compile(fullgraph=True) and torch.export capture it whole, label values never cause a
recompilation, and CUDA graphs can capture it (with validate=False). Differentiating twice
(create_graph=True) recomputes I from the input in plain differentiable torch ops and
differentiates that: gradients of gradients are exact, never silently zero.

Checking values. Shapes, dtypes and devices are checked before any work. Values (labels out
of range, probabilities that are NaN, negative or do not sum to 1, every example ignored,
logits that make Q undefined) are checked on the host when validate=True, the default for CPU
tensors: a ValueError naming the argument, before any work. On other devices the default is
validate=False: device-side assertions (torch._assert_async) that never synchronize; on CUDA
a violation surfaces asynchronously as a device-side assert, as a bad label does in
`F.cross_entropy` (on CPU the assertion raises a RuntimeError at once). validate=True on CUDA
costs one host synchronization per check.

Across processes. With a torch.distributed group each rank holds a shard of the batch. S, s,
n, N and the single examples' Σ Q ln Q are sums over examples, so each rank's sums are
summed over the ranks (S and the column sums in one all-reduce) before any logarithm: every
rank then holds the batch's S and forms the same I and Λ. Labels take rows by their counts over all
ranks, so rows line up across ranks, a label absent from a shard included, and a label
alone in the whole batch gets no row on any rank. The backward needs no communication:
∂I/∂Q[b, c] = Λ[y_b, c]/N of this rank's rows b, from the global Λ and N, is exactly the
gradient of the batch's I with respect to this rank's inputs. A process group cannot be an
operator's argument, so this path is an autograd.Function around the same pieces.

Layout of this file: argument checks, value checks, the float64 reference, the targets as
rows of S, the joint (torch backend), I and Λ, the gradient (torch backend), the backends,
the operator, the distributed path, the public functions and module.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any, NamedTuple

import torch
from torch import nn

from infonorm._distributed import (
    all_gather,
    all_sum,
    all_sum_,
    check_group,
    undo_gradient_average,
)
from infonorm._validation import check_choice, check_dense, check_has_values

__all__ = [
    "MMILoss",
    "mutual_information",
    "mutual_information_reference",
]

_BACKENDS = ("auto", "torch", "triton")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_HALF = (torch.float16, torch.bfloat16)
# what the Triton kernels take
_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Elements of a chunk of examples on CPU: 2^18 (1 MB in float32), so that the few
# buffers each chunk's passes read and write stay in a core's L2 cache. On other devices
# one chunk is the batch.
_CHUNK_ELEMENTS = 1 << 18
# ln Q is clamped here before it multiplies Q: below it Q underflows to 0 in float32 and
# float64 alike (e^−1e4 = 0), so only masked classes (ln Q = −inf, Q = 0) are affected
_LOWEST_LN_Q = -1e4


# ---------------------------------------------------------------------------- argument checks


def _check_arguments(
    input: Any,
    target: Any,
    probs: Any,
    ignore_index: Any = -100,
    group: Any = None,
    backend: Any = "torch",
    validate: Any = None,
) -> None:
    """Types, shapes, devices and options: everything that does not read a value."""
    if not isinstance(probs, bool):
        raise TypeError(f"probs must be True or False, got {type(probs).__name__}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
    if not _INT64_MIN <= ignore_index <= _INT64_MAX:
        raise ValueError(
            "ignore_index must fit in int64 (labels are compared as int64), got "
            + (f"{ignore_index}" if abs(ignore_index) < 10**30 else "an integer beyond it")
        )
    if validate is not None and not isinstance(validate, bool):
        raise TypeError(f"validate must be True, False or None, got {type(validate).__name__}")
    check_choice(backend, "backend", _BACKENDS)
    _check_input(input, probs, group)
    _check_target(target, input)


def _check_input(input: Any, probs: bool, group: Any) -> None:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    check_dense(input, "input")
    check_has_values(input, "input", "I(y; ŷ) needs its values")
    if input.dim() < 2:
        what = "probabilities Q(ŷ|x)" if probs else "logits"
        raise ValueError(
            f"input must be (B, C) {what} or (B, C, d1, …), got shape {tuple(input.shape)}"
        )
    # with a group one rank's shard may be empty: the batch is checked by `_batch_size`
    if input.numel() == 0 and input.shape[1] != 0 and group is None:
        raise ValueError("input is an empty batch (B = 0): I(y; ŷ) needs at least one example")
    if input.shape[1] == 0:
        raise ValueError("input has no classes (C = 0)")


def _check_target(target: Any, input: torch.Tensor) -> None:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    check_dense(target, "target")
    if target.device != input.device:
        raise ValueError(f"target is on {target.device} but input is on {input.device}")
    B, extra = input.shape[0], tuple(input.shape[2:])
    if target.dim() == input.dim() - 1:
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(
                f"target of shape {_shape_name('(B', extra)} must hold integer class indices, "
                f"got dtype {target.dtype}"
            )
        if tuple(target.shape) != (B, *extra):
            if not extra:
                raise ValueError(f"target has {target.shape[0]} labels but input has B = {B} rows")
            raise ValueError(
                f"target has shape {tuple(target.shape)} but input of shape "
                f"{tuple(input.shape)} needs class indices of shape {(B, *extra)}"
            )
    elif target.dim() == input.dim():
        if not target.is_floating_point():
            raise TypeError(
                f"target of shape {_shape_name('(B, C_y', extra)} must hold probabilities "
                f"Pop(y|x), got dtype {target.dtype}"
            )
        if target.shape[0] != B:
            raise ValueError(f"target has {target.shape[0]} rows but input has B = {B} rows")
        if tuple(target.shape[2:]) != extra:
            raise ValueError(
                f"target has shape {tuple(target.shape)} but input of shape "
                f"{tuple(input.shape)} needs rows of shape (B, C_y, {', '.join(map(str, extra))})"
            )
        if target.shape[1] == 0:
            raise ValueError("target has no label classes (C_y = 0)")
    elif not extra:
        raise ValueError(
            "target must be (B,) class indices or (B, C_y) rows Pop(y|x), "
            f"got shape {tuple(target.shape)}"
        )
    else:
        raise ValueError(
            f"target must be {_shape_name('(B', extra)} class indices or "
            f"{_shape_name('(B, C_y', extra)} rows Pop(y|x) for input of shape "
            f"{tuple(input.shape)}, got shape {tuple(target.shape)}"
        )


def _shape_name(head: str, extra: tuple[int, ...]) -> str:
    """'(B,)' or '(B, d1, d2)' style names of target shapes, in the order of the dims."""
    names = [f"d{i + 1}" for i in range(len(extra))]
    if head == "(B" and not names:
        return "(B,)"
    return ", ".join([head, *names]) + ")"


def _as_examples(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, d1, …) input and (B, d1, …) or (B, C_y, d1, …) target as (B·d1·…, C) and
    (B·d1·…,) or (B·d1·…, C_y): every position an example, as in F.cross_entropy."""
    if input.dim() == 2:
        return input, target
    x = input.movedim(1, -1).reshape(-1, input.shape[1])
    if target.dim() == input.dim():
        return x, target.movedim(1, -1).reshape(-1, target.shape[1])
    return x, target.reshape(-1)


def _check_backend(backend: str, input: torch.Tensor, target: torch.Tensor, probs: bool) -> None:
    """backend="triton" only where the kernels compute: shapes and dtypes, nothing else (the
    device and the kernels' presence are checked where the backend is resolved)."""
    if backend == "triton" and not _kernel_case(input, target, probs):
        raise ValueError(
            "backend='triton' computes class-index targets with float32, bfloat16 or "
            "float16 logits; use backend='torch' (or 'auto') for "
            + ("probabilities" if probs else "label rows" if target.dim() == 2 else "float64")
        )


def _kernel_case(input: torch.Tensor, target: torch.Tensor, probs: bool) -> bool:
    return target.dim() == 1 and not probs and input.dtype in _KERNEL_DTYPES


def _resolve_backend(backend: str, input: torch.Tensor, target: torch.Tensor, probs: bool) -> str:
    """ "auto" made "torch" or "triton"; "triton" checked to run here. Called inside the
    operator (its implementation, fake and autograd context), never where torch.compile
    traces Python: finding the kernels imports triton."""
    if backend == "auto":
        if _kernel_case(input, target, probs) and input.is_cuda and _kernels_available():
            return "triton"
        return "torch"
    if backend == "triton":
        if not (input.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
            raise ValueError(
                f"backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU "
                f"tensors), got input on {input.device}"
            )
        if not _kernels_available():
            raise ValueError("backend='triton' needs triton and infonorm's Triton kernels")
    return backend


@functools.cache
def _kernels_available() -> bool:
    """Whether the Triton kernels import (this imports triton)."""
    try:
        importlib.import_module("infonorm.kernels.mutual_information")
    except ImportError:
        return False
    return True


def _resolve_validate(validate: bool | None, input: torch.Tensor) -> bool:
    """None: host checks for CPU tensors (they cost no synchronization there), device-side
    assertions elsewhere."""
    return input.device.type == "cpu" if validate is None else validate


# ---------------------------------------------------------------------------- value checks


def _probability_tolerance(dtype: torch.dtype) -> float:
    """How far from 1 a row of probabilities stored in `dtype` may sum. Each stored entry
    is off by at most eps/2 of itself, so a row that sums to 1 exactly sums to 1 ± eps/2 once
    stored, whatever C; 2 eps leaves room for rows computed in the dtype itself, and 1e-5
    for rows normalized in float32 and stored in float64."""
    return max(1e-5, 2 * torch.finfo(dtype).eps)


def _check_values(
    input: torch.Tensor,
    target: torch.Tensor,
    probs: bool,
    ignore_index: int,
    *,
    whole_batch: bool = True,
) -> None:
    """Host checks of the values (validate=True): a ValueError naming the argument.
    `whole_batch`: the target is the batch's, not one rank's shard, so that an example must
    be left once the ignored ones are."""
    if probs:
        _check_distributions(input, "input")
    if target.dim() == 2:
        _check_distributions(target, "target")
    else:
        _check_labels(target, input.shape[1], ignore_index, whole_batch)


def _check_distributions(rows: torch.Tensor, name: str) -> None:
    """Rows of probabilities: no NaN, no negative entry, each summing to 1."""
    if torch.isnan(rows).any():
        raise ValueError(f"{name} holds NaN")
    if (rows < 0).any():
        raise ValueError(f"{name} holds negative values: rows must be probabilities")
    sums = rows.sum(1, dtype=torch.float64)
    tolerance = _probability_tolerance(rows.dtype)
    off = (sums - 1).abs()
    if (off > tolerance).any():
        b = int(off.argmax())
        raise ValueError(
            f"{name} rows must sum to 1, but row {b} sums to {sums[b].item():.6g} "
            f"(tolerance {tolerance:.2g} for {rows.dtype})"
        )


def _check_labels(target: torch.Tensor, C: int, ignore_index: int, whole_batch: bool) -> None:
    # compared in int64: in uint8, C = 256 and ignore_index = −100 would wrap
    y = target.long()
    kept = y != ignore_index
    bad = kept & ((y < 0) | (y >= C))
    if bad.any():
        values = y[bad]
        value = values.min() if (values < 0).any() else values.max()
        raise ValueError(f"target holds label {value.item()}, outside [0, {C}) (input has C = {C})")
    if whole_batch and not kept.any():
        raise ValueError(_EVERY_EXAMPLE_IGNORED.format(ignore_index))


def _assert_values(
    input: torch.Tensor, target: torch.Tensor, probs: bool, ignore_index: int
) -> None:
    """Device-side assertions of the same (validate=False): no host synchronization."""
    if probs:
        _assert_distributions(input, "input")
    if target.dim() == 2:
        _assert_distributions(target, "target")
    else:
        y = target.long()
        kept = y != ignore_index
        inside = (y >= 0) & (y < input.shape[1])
        torch._assert_async(
            (inside | ~kept).all(), "target holds a label outside [0, C) that is not ignore_index"
        )


def _check_or_assert_values(
    input: torch.Tensor,
    target: torch.Tensor,
    probs: bool,
    ignore_index: int,
    validate: bool,
    whole_batch: bool,
) -> None:
    if validate:
        _check_values(input, target, probs, ignore_index, whole_batch=whole_batch)
    else:
        _assert_values(input, target, probs, ignore_index)


_EVERY_EXAMPLE_IGNORED = (
    "target: every example is ignore_index ({}): I(y; ŷ) needs at least one example"
)


def _assert_distributions(rows: torch.Tensor, name: str) -> None:
    torch._assert_async(~torch.isnan(rows).any(), f"{name} holds NaN")
    torch._assert_async((rows >= 0).all(), f"{name} holds negative values")
    off = (rows.sum(1, dtype=torch.float64) - 1).abs()
    tolerance = _probability_tolerance(rows.dtype)
    torch._assert_async((off <= tolerance).all(), f"{name} rows must sum to 1")


def _check_examples(N: torch.Tensor, ignore_index: int, validate: bool) -> None:
    """N, the examples not ignored (of every rank), must not be 0."""
    message = _EVERY_EXAMPLE_IGNORED.format(ignore_index)
    if not validate:
        torch._assert_async(N > 0, message)
    elif N.item() == 0:
        raise ValueError(message)


def _check_predictions(s: torch.Tensor, validate: bool) -> None:
    """Every NaN of Q (from NaN or +inf logits, or a row of only −inf) reaches s = Σ_b Q[b]."""
    message = "input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined"
    if not validate:
        torch._assert_async(~torch.isnan(s).any(), message)
    elif torch.isnan(s).any():
        raise ValueError(message)


# ---------------------------------------------------------------------------- float64 reference


def mutual_information_reference(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    probs: bool = False,
    ignore_index: int = -100,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """I(y; ŷ) from the dense joint (C_y × C), computed in `dtype`, differentiable by autograd.

    The independent reference for tests and claims: plain torch ops, no chunks, no hand
    backward. Pop(y) is held fixed (the targets are data), as in `mutual_information`, and
    the arguments follow the same conventions (ignored examples, (B, C, d1, …) inputs).
    """
    _check_arguments(input, target, probs, ignore_index)
    x, target = _as_examples(input, target)
    _check_values(x, target, probs, ignore_index)
    C = x.shape[1]
    if target.dim() == 1:
        kept = target.long() != ignore_index
        x, target = x[kept], target[kept]
    Q = x.to(dtype) if probs else torch.softmax(x.to(dtype), 1)
    # one_hot takes int64 indices only; labels may come in any integer dtype
    Pop_y_x = (
        nn.functional.one_hot(target.long(), C).to(dtype) if target.dim() == 1 else target.to(dtype)
    )
    # labels of no example add 0 to I; dropped, so that autograd never meets ln 0 for them
    Pop_y_x = Pop_y_x[:, Pop_y_x.sum(0) > 0]
    # P(y, ŷ) = (1/N) Σ_b Pop(y|x_b) Q(ŷ|x_b)
    P = Pop_y_x.T @ Q / Q.shape[0]
    # Pop(y) = (1/N) Σ_b Pop(y|x_b);  P(ŷ) = Σ_y P(y, ŷ)
    Pop_y, P_yhat = Pop_y_x.mean(0), P.sum(0)
    # I = Σ P ln P − Σ_y (Σ_ŷ P) ln Pop(y) − Σ_ŷ P(ŷ) ln P(ŷ), each 0 ln 0 = 0
    return _xlogx(P).sum() - torch.xlogy(P.sum(1), Pop_y).sum() - _xlogx(P_yhat).sum()


def _xlogx(P: torch.Tensor) -> torch.Tensor:
    """P ln P with 0 ln 0 = 0 in value and gradient. torch.xlogy(P, P) has the gradient
    P/P = NaN at P = 0, which masked logits (−inf, Q = 0 exactly) reach; the limit of the
    gradient through Q = softmax(z) is 0 there, as in the hand backward."""
    positive = P > 0
    return torch.where(positive, P * torch.log(torch.where(positive, P, 1.0)), 0.0)


# ---------------------------------------------------------------------------- targets as rows of S


class ClassIndexRows(NamedTuple):
    """Class-index targets as rows of S (see the module's docstring).

    rows: (B,) int64, example b's row of S in [0, R), −2 alone with its label, −1 ignored.
    n: (R,) examples of each row's label (0 for the rows past the labels that took one).
    counts: (C,) examples of every label. N: () float64, the examples not ignored.
    """

    rows: torch.Tensor
    n: torch.Tensor
    counts: torch.Tensor
    N: torch.Tensor


class LabelRows(NamedTuple):
    """Label rows Pop(y|x) as targets: row k of S is label k's (C_y rows).

    Pop: (B, C_y) in the compute dtype. n: (C_y,) n[k] = Σ_b Pop(k|x_b). N: () float64, B.
    """

    Pop: torch.Tensor
    n: torch.Tensor
    N: torch.Tensor


class Layout(NamedTuple):
    """How class-index targets take rows of S: R rows; `singles`: an example alone with its
    label gets none (−2), else every label k has row k (R = C)."""

    R: int
    singles: bool


def _layout(B: int, C: int, backend: str) -> Layout:
    """Static: from the batch's size B (of all ranks), C and the backend, never the labels.

    With C <= B every label can have its row at no more than B·C memory, and the torch
    backend then needs no per-example Σ_c Q ln Q at all. Otherwise, or for the Triton
    kernels (which compute Σ_c Q ln Q in the registers that hold Q anyway), labels of two
    examples or more take rows: at most B // 2 of them, and at most C.
    """
    if backend == "triton" or C > B:
        return Layout(max(1, min(B // 2, C)), True)
    return Layout(C, False)


def _class_index_rows(
    target: torch.Tensor,
    C: int,
    layout: Layout,
    ignore_index: int,
    dtype: torch.dtype,
    group: Any = None,
) -> ClassIndexRows:
    """With a group the label counts are those of all its ranks: every rank then gives each
    label the same row, whether or not its shard holds an example of that label."""
    # in int64: indexing needs it, and in uint8 ignore_index = −100 would wrap to 156
    y = target.long()
    kept = y != ignore_index
    # the ignored examples count in one bin past the C labels
    label = torch.where(kept, y, C)
    counts = torch.zeros(C + 1, dtype=torch.int64, device=y.device)
    counts = all_sum(counts.index_add_(0, label, torch.ones_like(label)), group)[:C]
    N = counts.sum().to(torch.float64)
    if not layout.singles:
        return ClassIndexRows(torch.where(kept, y, -1), counts.to(dtype), counts, N)
    # labels of two examples or more take rows 0, 1, … in the order of the labels
    repeated = counts >= 2
    rank = repeated.cumsum(0) - 1
    row_of_label = torch.cat([torch.where(repeated, rank, -2), rank.new_full((1,), -1)])
    rows = row_of_label[label]
    # n[r] = examples of row r's label; the other labels' counts land in a spare bin R
    R = layout.R
    n = torch.zeros(R + 1, dtype=dtype, device=y.device)
    n = n.index_add_(0, torch.where(repeated, rank, R), counts.to(dtype))[:R]
    return ClassIndexRows(rows, n, counts, N)


def _label_rows(target: torch.Tensor, dtype: torch.dtype, group: Any = None) -> LabelRows:
    Pop = target.to(dtype)
    # made on the device (a copy from the host could not be captured in a CUDA graph)
    B = Pop.new_full((), Pop.shape[0], dtype=torch.float64)
    # n[k] = Σ_b Pop(k|x_b) over the examples of every rank
    return LabelRows(Pop, all_sum(Pop.sum(0), group), all_sum(B, group))


def _compute_dtype(input: torch.Tensor) -> torch.dtype:
    """float32 for half-precision input: sums over the batch need more than 8-bit mantissas."""
    return torch.float32 if input.dtype in _HALF else input.dtype


def _chunk_rows(rows: int, C: int, device: torch.device) -> int:
    if device.type != "cpu":
        return max(1, rows)
    return max(1, _CHUNK_ELEMENTS // C)


def _chunks(B: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, B)) for a in range(0, B, step)]


def _joint_index(rows: torch.Tensor, R: int) -> torch.Tensor:
    """rows as indices into R + 2 rows: its own, R for ignored examples, R + 1 for single ones."""
    return torch.where(rows >= 0, rows, R - 1 - rows)


# ---------------------------------------------------------------------------- the joint (torch)


def _joint_of_logits(
    z: torch.Tensor, rows: torch.Tensor, R: int, *, singles: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(joint, lse, sum_single): the sums of `kernels.mutual_information.forward`, in torch.

    joint (R + 2, C): rows 0..R−1 are S, S[r] = Σ_{b: rows_b = r} Q[b]; row R sums the
    ignored examples' Q[b] and row R + 1 the single ones', so that s = Σ_{r<R} joint[r] +
    joint[R + 1] (`_column_sums`). lse[b] = logsumexp z[b] and sum_single =
    Σ_{b: rows_b = −2} Σ_c Q[b, c] ln Q[b, c]. float32 for half-precision logits
    (sum_single: float64), z's dtype otherwise. singles=False: no example has rows_b = −2,
    and lse (then empty) and sum_single (0) are not computed.
    """
    B, C = z.shape
    dtype = _compute_dtype(z)
    step = _chunk_rows(B, C, z.device)
    index = _joint_index(rows, R)
    joint = z.new_zeros(R + 2, C, dtype=dtype)
    Q_scratch = z.new_empty(min(step, B), C, dtype=dtype)
    # per example: m = max_c z, max_c Q, and Σ_c Q (z − m)
    m, Q_max, QL = z.new_empty(3, B if singles else 0, 1, dtype=dtype).unbind(0)
    L_scratch = torch.empty_like(Q_scratch) if singles else None
    for a, b in _chunks(B, step):
        x = z[a:b]
        Q = torch.softmax(x, 1, dtype=dtype, out=Q_scratch[: b - a])
        joint.index_add_(0, index[a:b], Q)
        if singles:
            m[a:b] = x.amax(1, keepdim=True)
            torch.amax(Q, 1, keepdim=True, out=Q_max[a:b])
            L = torch.sub(x, m[a:b], out=L_scratch[: b - a])
            # at a masked logit Q L = 0·(−inf) = NaN, whose limit is 0: nansum (NaN or +inf
            # logits make the whole row of Q NaN, which nansum keeps)
            torch.nansum(L.mul_(Q), 1, keepdim=True, out=QL[a:b])
    if not singles:
        return joint, z.new_empty(0, dtype=dtype), z.new_zeros((), dtype=torch.float64)
    # ln Q = (z − m) + ln max_c Q: the largest Q of a row is at least 1/C, so its logarithm
    # is accurate, and z − m <= 0 keeps the products Q (z − m) small wherever Q is
    #   Σ_c Q ln Q = Σ_c Q (z − m) + ln max_c Q,    lse = m − ln max_c Q
    ln_Q_max = Q_max.log_()
    entropy = QL.add_(ln_Q_max).squeeze(1)
    lse = m.sub_(ln_Q_max).squeeze(1)
    sum_single = torch.where(rows == -2, entropy, 0).sum(dtype=torch.float64)
    return joint, lse, sum_single


def _joint_of_probabilities(
    Q_in: torch.Tensor, rows: torch.Tensor, R: int, *, singles: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(joint, sum_single) as `_joint_of_logits`, for rows Q given as probabilities."""
    B, C = Q_in.shape
    dtype = _compute_dtype(Q_in)
    step = _chunk_rows(B, C, Q_in.device)
    index = _joint_index(rows, R)
    joint = Q_in.new_zeros(R + 2, C, dtype=dtype)
    entropy = Q_in.new_zeros(B, dtype=dtype)
    tiny = torch.finfo(dtype).tiny
    for a, b in _chunks(B, step):
        Q = Q_in[a:b].to(dtype)
        joint.index_add_(0, index[a:b], Q)
        if singles:
            # Σ_c Q ln Q, 0 ln 0 = 0: Q ln max(Q, tiny) is 0 where Q = 0
            entropy[a:b] = Q.clamp_min(tiny).log_().mul_(Q).sum(1)
    return joint, torch.where(rows == -2, entropy, 0).sum(dtype=torch.float64)


def _column_sums(joint: torch.Tensor) -> torch.Tensor:
    """s = Σ_b Q[b] over the examples not ignored, from `_joint_of_logits`' rows."""
    return joint[:-2].sum(0).add_(joint[-1])


def _joint_of_label_rows(
    x: torch.Tensor, Pop: torch.Tensor, probs: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, s) for label rows: S = Popᵀ Q and s = Σ_b Q[b], chunk by chunk."""
    B, C = x.shape
    dtype = Pop.dtype
    step = _chunk_rows(B, C, x.device)
    S = x.new_zeros(Pop.shape[1], C, dtype=dtype)
    s = x.new_zeros(C, dtype=dtype)
    for a, b in _chunks(B, step):
        Q = x[a:b].to(dtype) if probs else torch.softmax(x[a:b], 1, dtype=dtype)
        # S += Pop(y|x)ᵀ Q over the chunk
        S.addmm_(Pop[a:b].T, Q)
        s += Q.sum(0)
    return S, s


def _joint_float64(
    x: torch.Tensor, target: torch.Tensor, probs: bool, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, s, Σ_single Σ_c Q ln Q, the counts of every label, N) of the batch in float64,
    for its entropies; values checked on the host."""
    x = x.double()
    if target.dim() == 2:
        label_rows = _label_rows(target, torch.float64)
        S, s = _joint_of_label_rows(x, label_rows.Pop, probs)
        _check_predictions(s, validate=True)
        return S, s, S.new_zeros(()), label_rows.n, label_rows.N
    layout = _layout(*x.shape, "torch")
    rows_of_S = _class_index_rows(target, x.shape[1], layout, ignore_index, torch.float64)
    S, s, _, _, sum_single = _class_index_sums(x, rows_of_S.rows, layout, probs, "torch", None)
    _check_predictions(s, validate=True)
    return S, s, sum_single, rows_of_S.counts.double(), rows_of_S.N


# ---------------------------------------------------------------------------- I and Λ


def _information(
    S: torch.Tensor,
    s: torch.Tensor,
    n: torch.Tensor,
    N: torch.Tensor,
    sum_single: torch.Tensor,
    *,
    probs: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(I in float64, ln s) from the batch's sums, and Λ in S's storage. Λ is finite
    everywhere, and for probabilities exactly 0 where S = 0 (the gradient in Q is
    documented so).

    Where S[k, c] = 0 every example of row k has Q[b, c] = 0, and Λ[k, c] only ever meets
    that factor: through the softmax any finite value is exact there. Logarithms are taken
    of values clamped to the dtype's smallest normal number, so 0 gives a finite value (and
    the fast path of the logarithm: ln 0 is 10× slower on CPU).
    """
    R, C = S.shape
    dtype = S.dtype
    tiny = torch.finfo(dtype).tiny
    # ln s, where s = 0 (no example predicts c at all) a finite value
    ln_s = s.clamp_min(tiny).log_()
    # ln (n/N), where n = 0 (rows past the labels: all of their S is 0) a finite value
    ln_n = (n.clamp_min(tiny) / N).log_().to(dtype)
    # r[k] = Σ_c S[k, c]; for a softmax, whose rows sum to 1, that is n[k]
    r = S.sum(1) if probs else n
    zero = S == 0 if probs else None
    sum_SlnS = S.new_zeros((), dtype=torch.float64)
    step = _chunk_rows(R, C, S.device)
    ln_S = S.new_empty(min(step, R), C)
    for a, b in _chunks(R, step):
        # Λ[k, c] = ln S[k, c] − ln s[c] − ln (n[k]/N), a chunk of rows in cache at a time
        S_k = S[a:b]
        torch.clamp(S_k, min=tiny, out=ln_S[: b - a]).log_()
        # a pairwise sum of the products (a dot product would accumulate in float32 lanes)
        sum_SlnS += S_k.mul_(ln_S[: b - a]).sum().double()
        torch.sub(ln_S[: b - a], ln_s, out=S_k).sub_(ln_n[a:b, None])
    if probs:
        S.masked_fill_(zero, 0.0)
    # N I = Σ S ln S + Σ_single Σ_c Q ln Q − Σ_k r[k] ln n[k] − Σ s ln s + ln N Σ s: on
    # the simplex r = n and Σ s = N, but written so, I stays the definition for any
    # probabilities Q >= 0 and Λ/N stays its gradient (single examples have r = n = 1)
    r, s64, n64 = r.double(), s.double(), n.double()
    terms = sum_SlnS + sum_single - torch.xlogy(r, n64).sum() - torch.xlogy(s64, s64).sum()
    information = (terms + torch.log(N) * s64.sum()) / N
    return information, ln_s


def _finish_table(joint: torch.Tensor, ln_s: torch.Tensor, N: torch.Tensor) -> torch.Tensor:
    """The torch backend's G rows, in `joint` once its first R rows hold Λ: row R = 0 for
    ignored examples, row R + 1 = ln N − ln s for single ones (their Λ row is
    ln Q[b] − ln s + ln N, and backward adds ln Q[b])."""
    joint[-2].zero_()
    torch.sub(torch.log(N).to(joint.dtype), ln_s, out=joint[-1])
    return joint


# ---------------------------------------------------------------------------- the gradient (torch)


def _gradient_of_logits(
    z: torch.Tensor,
    rows: torch.Tensor,
    lse: torch.Tensor,
    table: torch.Tensor,
    scale: torch.Tensor,
    *,
    singles: bool = True,
) -> torch.Tensor:
    """dz = scale · Q ∘ (G − Σ_c Q G): `kernels.mutual_information.backward`, in torch.

    G[b] = table[rows_b] (`_finish_table`: Λ[rows_b]; 0 for an ignored example) plus, for a
    single example, ln Q[b] = z[b] − lse[b]; scale (0-dim) is the upstream gradient over N.
    Q is recomputed chunk by chunk; lse is read for single examples only (singles=False:
    there are none).
    """
    B, C = z.shape
    R = table.shape[0] - 2
    dtype = table.dtype
    index = _joint_index(rows, R)
    single = (rows == -2).to(dtype).unsqueeze(1) if singles else None
    step = _chunk_rows(B, C, z.device)
    dz = torch.empty_like(z, memory_format=torch.contiguous_format)
    direct = z.dtype == dtype
    Q_scratch = z.new_empty(min(step, B), C, dtype=dtype)
    G_scratch = torch.empty_like(Q_scratch)
    L_scratch = torch.empty_like(Q_scratch) if singles else None
    out_scratch = None if direct else torch.empty_like(Q_scratch)
    for a, b in _chunks(B, step):
        x = z[a:b]
        Q = torch.softmax(x, 1, dtype=dtype, out=Q_scratch[: b - a])
        G = torch.index_select(table, 0, index[a:b], out=G_scratch[: b - a])
        if singles:
            # ln Q = z − lse; >= −1e4 changes nothing where Q > 0, and keeps Q G = 0
            # where Q = 0 (masked logits)
            ln_Q = torch.sub(x, lse[a:b, None], out=L_scratch[: b - a])
            G.addcmul_(ln_Q.clamp_min_(_LOWEST_LN_Q), single[a:b])
        # dz = scale Q ∘ (G − Σ_c Q G): the softmax's backward, fused, then the scale
        out = dz[a:b] if direct else out_scratch[: b - a]
        torch.ops.aten._softmax_backward_data.out(G, Q, 1, dtype, grad_input=out).mul_(scale)
        if not direct:
            dz[a:b].copy_(out)
    return dz


def _gradient_of_probabilities(
    Q_in: torch.Tensor,
    rows: torch.Tensor,
    table: torch.Tensor,
    scale: torch.Tensor,
    *,
    singles: bool = True,
) -> torch.Tensor:
    """dQ = scale · G with G[b] = N ∂I/∂Q[b]: table[rows_b] (`_finish_table`: Λ[rows_b], 0
    for an ignored example) plus ln Q[b] for a single example, whose G is 0 where
    Q[b] = 0 (its row of S is Q[b], and Λ = 0 where S = 0, as for every row)."""
    B, C = Q_in.shape
    R = table.shape[0] - 2
    dtype = table.dtype
    index = _joint_index(rows, R)
    dQ = torch.empty_like(Q_in, memory_format=torch.contiguous_format)
    if not singles:  # no example is alone with its label: G is the table's row
        for a, b in _chunks(B, _chunk_rows(B, C, Q_in.device)):
            dQ[a:b] = table[index[a:b]].mul_(scale)
        return dQ
    single = (rows == -2).unsqueeze(1)
    tiny = torch.finfo(dtype).tiny
    for a, b in _chunks(B, _chunk_rows(B, C, Q_in.device)):
        Q = Q_in[a:b].to(dtype)
        G = table[index[a:b]]
        G.addcmul_(Q.clamp_min(tiny).log_(), single[a:b].to(dtype))
        dQ[a:b] = G.masked_fill_(single[a:b] & (Q == 0), 0.0).mul_(scale)
    return dQ


def _gradient_of_label_rows(
    x: torch.Tensor, Pop: torch.Tensor, Lam: torch.Tensor, scale: torch.Tensor, probs: bool
) -> torch.Tensor:
    """dx for label rows: G = Pop(y|x) Λ (= N ∂I/∂Q), then through the softmax for logits."""
    B, C = x.shape
    dtype = Lam.dtype
    scaled = Lam * scale
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    for a, b in _chunks(B, _chunk_rows(B, C, x.device)):
        G = Pop[a:b] @ scaled
        if probs:
            out[a:b] = G
            continue
        Q = torch.softmax(x[a:b], 1, dtype=dtype)
        out[a:b] = torch._softmax_backward_data(G, Q, 1, dtype)
    return out


# ---------------------------------------------------------------------------- backends


def _kernels() -> Any:
    return importlib.import_module("infonorm.kernels.mutual_information")


class _Sums(NamedTuple):
    """One batch's results that backward reads: Λ (for the torch backend and class indices
    with the two rows of `_finish_table` past it), ln s, logsumexp of each row of logits
    (empty where not needed), the rows of class-index targets (empty otherwise), N."""

    Lam: torch.Tensor
    ln_s: torch.Tensor
    lse: torch.Tensor
    rows: torch.Tensor
    N: torch.Tensor


def _forward(
    x: torch.Tensor,
    target: torch.Tensor,
    probs: bool,
    ignore_index: int,
    backend: str,
    validate: bool,
    *,
    group: Any = None,
    layout: Layout | None = None,
) -> tuple[torch.Tensor, _Sums]:
    """(I in float64, what backward needs) of x (B, C) and target; with a group the sums of
    every rank, `layout` then being that of the batch of all ranks."""
    dtype = _compute_dtype(x)
    B, C = x.shape
    if target.dim() == 2:
        rows_of_S = _label_rows(target, dtype, group)
        S, s = _joint_of_label_rows(x, rows_of_S.Pop, probs)
        S, s, sum_single = _all_sum_sums(S, s, S.new_zeros((), dtype=torch.float64), group)
        Lam, lse, rows = S, x.new_empty(0, dtype=dtype), x.new_empty(0, dtype=torch.int64)
    else:
        layout = _layout(B, C, backend) if layout is None else layout
        rows_of_S = _class_index_rows(target, C, layout, ignore_index, dtype, group)
        if group is not None or not validate:  # else checked before any work
            _check_examples(rows_of_S.N, ignore_index, validate)
        rows = rows_of_S.rows
        S, s, Lam, lse, sum_single = _class_index_sums(x, rows, layout, probs, backend, group)
    _check_predictions(s, validate)
    N = rows_of_S.N
    information, ln_s = _information(S, s, rows_of_S.n, N, sum_single.double(), probs=probs)
    if Lam is not S:
        _finish_table(Lam, ln_s, N)
    return information, _Sums(Lam, ln_s, lse, rows, N)


def _class_index_sums(
    x: torch.Tensor,
    rows: torch.Tensor,
    layout: Layout,
    probs: bool,
    backend: str,
    group: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, s, the buffer that will hold Λ, lse, sum_single) of the batch of every rank.

    The buffer is S itself for the Triton kernels, and for the torch backend its joint,
    whose two rows past S become G's rows of ignored and single examples."""
    R, singles = layout
    if backend == "triton":
        S, s, lse, sum_single = _kernels().forward(x, rows, R)
        S, s, sum_single = _all_sum_sums(S, s, sum_single, group)
        return S, s, S, lse, sum_single
    if probs:
        joint, sum_single = _joint_of_probabilities(x, rows, R, singles=singles)
        lse = x.new_empty(0, dtype=joint.dtype)
    else:
        joint, lse, sum_single = _joint_of_logits(x, rows, R, singles=singles)
    # sums over examples: each rank's are summed over the ranks, before any logarithm
    joint, sum_single = all_sum_(joint, group), all_sum(sum_single, group)
    return joint[:R], _column_sums(joint), joint, lse, sum_single


def _all_sum_sums(
    S: torch.Tensor, s: torch.Tensor, sum_single: torch.Tensor, group: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S, s and sum_single summed over the ranks of `group` (S and s in one all-reduce)."""
    if group is None:
        return S, s, sum_single
    joint = all_sum_(torch.cat([S, s.unsqueeze(0)]), group)
    return joint[:-1], joint[-1], all_sum(sum_single, group)


def _backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    target: torch.Tensor,
    sums: _Sums,
    probs: bool,
    backend: str,
    singles: bool,
) -> torch.Tensor:
    """∂(grad·I)/∂x from the saved sums; N and Λ are the batch's (all ranks')."""
    Lam = sums.Lam
    # scale = upstream gradient / N, on the device: never read on the host
    scale = (grad.double() / sums.N).to(Lam.dtype)
    if target.dim() == 2:
        return _gradient_of_label_rows(x, target.to(Lam.dtype), Lam, scale, probs)
    if probs:
        return _gradient_of_probabilities(x, sums.rows, Lam, scale, singles=singles)
    if backend == "triton":
        return _kernels().backward(x, sums.rows, sums.lse, Lam, sums.ln_s, scale)
    return _gradient_of_logits(x, sums.rows, sums.lse, Lam, scale, singles=singles)


# ---------------------------------------------------------------------------- double backward


def _information_composite(
    x: torch.Tensor, target: torch.Tensor, probs: bool, ignore_index: int
) -> torch.Tensor:
    """I in plain differentiable torch ops on the same rows of S (never C × C): what
    backward differentiates when asked for a graph of its own (create_graph=True)."""
    B, C = x.shape
    dtype = _compute_dtype(x)
    Q = x.to(dtype) if probs else torch.softmax(x, 1, dtype=dtype)
    if target.dim() == 2:
        layout = _label_rows(target, dtype)
        S, s, single = layout.Pop.T @ Q, Q.sum(0), Q.new_zeros(())
    else:
        R = _layout(B, C, "triton").R  # either layout gives the same I
        layout = _class_index_rows(target, C, Layout(R, True), ignore_index, dtype)
        joint = Q.new_zeros(R + 2, C).index_add(0, _joint_index(layout.rows, R), Q)
        S, s = joint[:R], _column_sums(joint)
        single = (_xlogx(Q).sum(1) * (layout.rows == -2)).sum()
    N = layout.N.to(dtype)
    terms = _xlogx(S).sum() + single - torch.xlogy(S.sum(1), layout.n).sum() - _xlogx(s).sum()
    return (terms + torch.log(N) * s.sum()) / N


def _differentiable_gradient(
    grad: torch.Tensor, x: torch.Tensor, target: torch.Tensor, probs: bool, ignore_index: int
) -> torch.Tensor:
    with torch.enable_grad():
        information = _information_composite(x, target, probs, ignore_index)
        (dx,) = torch.autograd.grad(information, x, grad.to(information.dtype), create_graph=True)
    return dx


# ---------------------------------------------------------------------------- the operator


@torch.library.custom_op("infonorm::mutual_information", mutates_args=())
def _operator(
    input: torch.Tensor,
    target: torch.Tensor,
    probs: bool,
    ignore_index: int,
    backend: str,
    validate: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(I, Λ, ln s, lse, rows, N) of (B, C) input and its targets; all but I are for backward."""
    backend = _resolve_backend(backend, input, target, probs)
    _check_or_assert_values(input, target, probs, ignore_index, validate, whole_batch=True)
    information, sums = _forward(input, target, probs, ignore_index, backend, validate)
    return (information.to(input.dtype), *sums)


@_operator.register_fake
def _operator_fake(input, target, probs, ignore_index, backend, validate):
    B, C = input.shape
    dtype = _compute_dtype(input)
    backend = _resolve_backend(backend, input, target, probs)
    if target.dim() == 2:
        R, rows, lse = target.shape[1], 0, 0
    else:
        R, singles = _layout(B, C, backend)
        rows, lse = B, B if singles and not probs else 0
        # the torch backend keeps G's rows of ignored and single examples past Λ's
        R += 0 if backend == "triton" else 2
    return (
        input.new_empty((), dtype=input.dtype),
        input.new_empty(R, C, dtype=dtype),
        input.new_empty(C, dtype=dtype),
        input.new_empty(lse, dtype=dtype),
        input.new_empty(rows, dtype=torch.int64),
        input.new_empty((), dtype=torch.float64),
    )


@torch.library.custom_op("infonorm::mutual_information_backward", mutates_args=())
def _operator_backward(
    grad: torch.Tensor,
    input: torch.Tensor,
    target: torch.Tensor,
    Lam: torch.Tensor,
    ln_s: torch.Tensor,
    lse: torch.Tensor,
    rows: torch.Tensor,
    N: torch.Tensor,
    probs: bool,
    backend: str,
    singles: bool,
) -> torch.Tensor:
    """∂(grad·I)/∂input from what the forward operator saved; `singles`: its layout's."""
    sums = _Sums(Lam, ln_s, lse, rows, N)
    return _backward(grad, input, target, sums, probs, backend, singles)


@_operator_backward.register_fake
def _operator_backward_fake(grad, input, target, Lam, ln_s, lse, rows, N, probs, backend, singles):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


def _setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
    input, target, probs, ignore_index, backend, _validate = inputs
    _information, Lam, ln_s, lse, rows, N = output
    ctx.save_for_backward(input, target, Lam, ln_s, lse, rows, N)
    ctx.mark_non_differentiable(Lam, ln_s, lse, rows, N)
    # their gradients are never read: no zeros made for them
    ctx.set_materialize_grads(False)
    backend = _resolve_backend(backend, input, target, probs)
    ctx.probs, ctx.ignore_index, ctx.backend = probs, ignore_index, backend
    ctx.singles = _layout(*input.shape, backend).singles


def _operator_autograd(ctx: Any, grad: torch.Tensor | None, *_unused: Any) -> tuple:
    if grad is None or not ctx.needs_input_grad[0]:
        return None, None, None, None, None, None
    input, target, *sums = ctx.saved_tensors
    if torch.is_grad_enabled():
        # create_graph=True: a gradient that is itself differentiable
        dinput = _differentiable_gradient(grad, input, target, ctx.probs, ctx.ignore_index)
    else:
        dinput = torch.ops.infonorm.mutual_information_backward(
            grad, input, target, *sums, ctx.probs, ctx.backend, ctx.singles
        )
    return dinput, None, None, None, None, None


_operator.register_autograd(_operator_autograd, setup_context=_setup_context)


# ---------------------------------------------------------------------------- distributed path


def _batch_size(input: torch.Tensor, target: torch.Tensor, group: Any) -> int:
    """The examples of all ranks of `group` together, once every rank is seen to have the
    same C and the same kind of target; every rank raises the same error, none waits."""
    C_y = target.shape[1] if target.dim() == 2 else 0
    here = torch.tensor([input.shape[0], input.shape[1], C_y], device=input.device)
    # rows: ranks; columns: B, C, C_y (0 for class indices)
    shapes = all_gather(here, group).cpu()
    for column, name in ((1, "input's classes C"), (2, "target's C_y (0 for class indices)")):
        values = shapes[:, column]
        if (values != values[0]).any():
            raise ValueError(f"group: the ranks disagree on {name}: {values.tolist()} by rank")
    B = int(shapes[:, 0].sum())
    if B == 0:
        raise ValueError(
            "input is empty on every rank of group: I(y; ŷ) needs at least one example"
        )
    return B


class _DistributedMutualInformation(torch.autograd.Function):
    """The operator's forward and backward around the ranks' all-reduces: forward sums
    the ranks' S, s and counts; backward is local (see the module's docstring)."""

    @staticmethod
    def forward(input, target, probs, ignore_index, backend, validate, group, layout):
        information, sums = _forward(
            input, target, probs, ignore_index, backend, validate, group=group, layout=layout
        )
        return information.to(input.dtype), *sums

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, probs, _ignore_index, backend, _validate, _group, layout = inputs
        _information, *sums = output
        ctx.save_for_backward(input, target, *sums)
        ctx.mark_non_differentiable(*sums)
        ctx.set_materialize_grads(False)
        ctx.probs, ctx.backend, ctx.singles = probs, backend, layout.singles

    @staticmethod
    def backward(ctx, grad, *_unused):
        if grad is None or not ctx.needs_input_grad[0]:
            return (None,) * 8
        if torch.is_grad_enabled():
            raise RuntimeError(
                "mutual_information with a group cannot be differentiated twice "
                "(create_graph=True): its backward is not itself differentiable"
            )
        input, target, *sums = ctx.saved_tensors
        sums = _Sums(*sums)
        dinput = _backward(grad, input, target, sums, ctx.probs, ctx.backend, ctx.singles)
        return dinput, *(None,) * 7


# ---------------------------------------------------------------------------- public API


def mutual_information(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    probs: bool = False,
    ignore_index: int = -100,
    group: Any = None,
    backend: str = "auto",
    validate: bool | None = None,
) -> torch.Tensor:
    """I(y; ŷ) in nats, the plug-in estimate over the batch; differentiable in `input`.

    input: (B, C) logits, or with probs=True probabilities Q(ŷ|x) (rows summing to 1, exact
    zeros allowed); (B, C, d1, …) takes every position as an example, as F.cross_entropy
    does. target: (B,) (or (B, d1, …)) integer class indices in [0, C), or (B, C_y)
    (or (B, C_y, d1, …)) rows of Pop(y|x); it is data: no gradient flows into it.
    ignore_index: examples whose class index equals it are left out of the batch's joint
    (as in F.cross_entropy; not applicable to label rows).

    I is invariant to relabeling the prediction columns: a perfect predictor and any
    permutation of it both reach I = H(y) (evaluate with `infonorm.matched_accuracy`).
    Nothing is clamped: 0 ln 0 = 0 is exact, classes no example predicts get finite (zero)
    gradients, masked logits (−inf) and logits of ±100 give finite values and gradients.
    Half-precision input is summed in float32; the result has input's dtype. Where a joint
    entry P(y, ŷ) is exactly 0 the partial derivative in Q is −∞; with probs=True the
    gradient there is 0, which through a softmax (Q = 0 there) is exact.

    Memory kept for backward is Λ, R × C (R = C when C <= B, else min(B/2, C)): at most
    B × C, half of it when C > B. The call reads no tensor value on the host and no shape
    depends on the labels (with validate=False): torch.compile(fullgraph=True),
    torch.export and CUDA graphs capture it as the operator
    torch.ops.infonorm.mutual_information, which double backward (create_graph=True)
    differentiates exactly.

    backend: "torch", "triton" (fused kernels: class-index targets with float32, bfloat16 or
    float16 logits, on CUDA, or on CPU under TRITON_INTERPRET=1), or "auto" (triton where it
    applies and triton is installed, torch otherwise).

    validate: True checks values on the host before any work (labels in range, probabilities
    without NaN or negative entries whose rows sum to 1, not every example ignored, and
    after the forward's sums that the logits define Q): a ValueError naming the argument; on
    CUDA each check is one host synchronization. False checks the same with device-side
    assertions, which never synchronize (on CUDA a failure surfaces later as a device-side
    assert; on CPU as a RuntimeError at once). None (default): True for CPU tensors, False
    for others.

    group: a torch.distributed process group across which the batch is split (data
    parallelism). input and target are this rank's shard (any size, empty included, as
    long as the batch is not); C, and C_y for label rows, must agree across ranks. The
    joint's sums are all-reduced before any logarithm, so every rank gets the I of the
    whole batch, and its gradient w.r.t. this rank's rows is exactly the gradient of that
    I w.r.t. them (with the same upstream gradient on every rank, as when each rank
    backpropagates the same loss). Summed over ranks, these give the full-batch gradient
    of the parameters: DistributedDataParallel averages instead, so train with
    `MMILoss(group)`, which corrects for it. Every rank must call forward; backward needs
    no communication. With a group the call is not one operator (a process group cannot be
    an operator's argument), reads the ranks' shapes on the host, and cannot be
    differentiated twice.
    """
    check_group(group)
    _check_arguments(input, target, probs, ignore_index, group, backend, validate)
    x, target = _as_examples(input, target.detach())
    _check_backend(backend, x, target, probs)
    validate = _resolve_validate(validate, x)
    if group is None:
        return torch.ops.infonorm.mutual_information(
            x, target, probs, ignore_index, backend, validate
        )[0]
    B = _batch_size(x, target, group)
    backend = _resolve_backend(backend, x, target, probs)
    _check_or_assert_values(x, target, probs, ignore_index, validate, whole_batch=False)
    layout = _layout(B, x.shape[1], backend)
    outputs = _DistributedMutualInformation.apply(
        x, target, probs, ignore_index, backend, validate, group, layout
    )
    return outputs[0]


class MMILoss(nn.Module):
    """−I(y; ŷ) of logits and targets: minimizing it maximizes the mutual information.

    There is no `reduction`: I(y; ŷ) is a statistic of the whole batch's joint, not a mean
    of per-example terms, so it has no per-example values to reduce. ignore_index, backend
    and validate are those of `mutual_information`; logits may be (B, C, d1, …) with
    targets (B, d1, …), as for nn.CrossEntropyLoss.

    group: for DistributedDataParallel training, the process group over which the batch is
    split (`torch.distributed.group.WORLD` once the process group is initialized). Every
    rank's loss value is then −I of the whole batch, and its backward is W times the
    gradient of −I w.r.t. this rank's logits (W = world size): DDP's average over the ranks
    of the parameter gradients then equals the single-process gradient of −I of the whole
    batch. So an MMI term added to a loss that DDP averages as usual (a per-rank mean
    cross-entropy, say) keeps its weight. Outside DDP (no averaging) use
    `mutual_information(..., group=group)` directly.
    """

    def __init__(
        self,
        group: Any = None,
        *,
        ignore_index: int = -100,
        backend: str = "auto",
        validate: bool | None = None,
        reduction: None = None,
    ) -> None:
        super().__init__()
        if reduction is not None or isinstance(group, str):
            given = f"reduction={reduction!r}" if reduction is not None else f"{group!r}"
            raise ValueError(
                f"MMILoss has no reduction (got {given}): I(y; ŷ) is a statistic of the "
                "whole batch, not a mean or sum of per-example losses; its positional "
                "argument is a torch.distributed process group"
            )
        self.group = check_group(group)
        self.ignore_index = ignore_index
        self.backend = backend
        self.validate = validate

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # value −I; gradient W ∂(−I)/∂logits, which DDP's average over the W ranks undoes
        loss = -mutual_information(
            logits,
            target,
            ignore_index=self.ignore_index,
            group=self.group,
            backend=self.backend,
            validate=self.validate,
        )
        return undo_gradient_average(loss, self.group)
