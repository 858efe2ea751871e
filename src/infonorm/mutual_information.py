"""Problem 2: the mutual information I(y; ŷ) between labels and predictions, as an objective.

For a batch of B examples with label rows Pop(y|x_b) (one-hot for class indices) and model
rows Q(ŷ|x_b), the plug-in estimate of the quiz's joint and its marginals is

    P(y, ŷ)  = (1/B) Σ_b Pop(y|x_b) Q(ŷ|x_b)
    Pop(y)   = (1/B) Σ_b Pop(y|x_b)
    P(ŷ)     = (1/B) Σ_b Q(ŷ|x_b)
    I(y; ŷ)  = Σ_{y,ŷ} P(y, ŷ) ln P(y, ŷ)/(Pop(y) P(ŷ))            (0 ln 0 = 0)

Everything is computed from unnormalized sums: S[k, c] = Σ_b Pop(k|x_b) Q(c|x_b),
n[k] = Σ_b Pop(k|x_b), s[c] = Σ_k S[k, c] and N = B, so that P(y=k, ŷ=c) = S[k, c]/N,
Pop(k) = n[k]/N, P(ŷ=c) = s[c]/N. With H(m) = ln N − (1/N) Σ m ln m for counts m summing to N,

    I = H(y) + H(ŷ) − H(y, ŷ) = ln N + (1/N) (Σ S ln S − Σ s ln s − Σ n ln n)

Holding Pop(y) fixed (it is data), the derivative is the pointwise mutual information
Λ[k, c] = ln P(y=k, ŷ=c)/(Pop(k) P(ŷ=c)) = ln (S[k, c]/s[c]) − ln (n[k]/N) of the labels,

    ∂I/∂Q[b, c] = (1/N) Σ_k Pop(k|x_b) Λ[k, c]             (= Λ[y_b, c]/N for an index y_b)

and through the softmax Q[b] = softmax(z[b]), with ḡ[b] = Σ_c Q[b, c] ∂I/∂Q[b, c],

    ∂I/∂z[b, c] = Q[b, c] (∂I/∂Q[b, c] − ḡ[b])

Cost. The forward builds S (one row per label present, or per label row) and s chunk by
chunk of examples; it keeps Λ, in S's storage, and s for backward, never Q: the backward
recomputes the softmax chunk by chunk in the rows of the gradient itself. With class
indices and logits, examples alone with their label in the batch (most of them when C is
large) get no row at all: for them S[k] = Q[b] and ln S[k] = z[b] − logsumexp z[b] follow
from the logits, without a logarithm per entry. So memory beyond the input and its
gradient is O(K·C) for the K labels with several examples, never C × C.

Across processes. With a torch.distributed group each rank holds a shard of the batch. S, s,
n, N and the single examples' Σ Q ln Q are sums over examples, so each rank's sums are
summed over the ranks (S and s in one all-reduce) before any logarithm: every rank then
holds the batch's S and forms the same I and Λ. Labels take rows by their counts over all
ranks, so rows line up across ranks, a label absent from a shard included, and a label
alone in the whole batch gets no row on any rank. The backward needs no communication:
∂I/∂Q[b, c] = Λ[y_b, c]/N of this rank's rows b, from the global Λ and N, is exactly the
gradient of the batch's I with respect to this rank's inputs.

Layout of this file: argument checks, the float64 reference (dense, plain autograd), the
joint and Λ, the hand backward, the autograd.Function, the public functions and module.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from infonorm._distributed import (
    all_gather,
    all_sum,
    all_sum_,
    check_group,
    undo_gradient_average,
)
from infonorm._validation import check_dense, check_has_values

__all__ = [
    "MMILoss",
    "mutual_information",
    "mutual_information_reference",
]

_HALF = (torch.float16, torch.bfloat16)
# Rows of a chunk on CPU: about 2^20 elements (4 MB in float32), so that each chunk's
# passes run in cache and its scratch buffers stay small. On a GPU one chunk is the batch.
_CHUNK_ELEMENTS = 1 << 20


# ---------------------------------------------------------------------------- argument checks


def _check_input(input: Any, probs: Any, group: Any) -> None:
    if not isinstance(probs, bool):
        raise TypeError(f"probs must be True or False, got {type(probs).__name__}")
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    check_dense(input, "input")
    # the label counts, and with them the shapes of the joint, depend on the values
    check_has_values(input, "input", "I(y; ŷ) needs its values")
    if input.dim() != 2:
        what = "probabilities Q(ŷ|x)" if probs else "logits"
        raise ValueError(f"input must be (B, C) {what}, got shape {tuple(input.shape)}")
    # with a group one rank's shard may be empty: the batch is checked by `_batch_size`
    if input.shape[0] == 0 and group is None:
        raise ValueError("input is an empty batch (B = 0): I(y; ŷ) needs at least one example")
    if input.shape[1] == 0:
        raise ValueError("input has no classes (C = 0)")
    if probs:
        _check_distributions(input, "input")


def _check_distributions(rows: torch.Tensor, name: str) -> None:
    """Rows of probabilities: no NaN, no negative entry, each summing to 1."""
    if torch.isnan(rows).any():
        raise ValueError(f"{name} holds NaN")
    if (rows < 0).any():
        raise ValueError(f"{name} holds negative values: rows must be probabilities")
    sums = rows.sum(1, dtype=torch.float64)
    # rounding of C entries stored in rows.dtype, with room for rows made in float32
    tolerance = max(1e-5, torch.finfo(rows.dtype).eps) * max(1.0, math.sqrt(rows.shape[1]))
    off = (sums - 1).abs()
    if (off > tolerance).any():
        b = int(off.argmax())
        raise ValueError(
            f"{name} rows must sum to 1, but row {b} sums to {sums[b].item():.6g} "
            f"(tolerance {tolerance:.2g})"
        )


def _check_target(target: Any, input: torch.Tensor) -> None:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    check_dense(target, "target")
    if target.device != input.device:
        raise ValueError(f"target is on {target.device} but input is on {input.device}")
    B, C = input.shape
    if target.dim() == 1:
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(
                f"target of shape (B,) must hold integer class indices, got dtype {target.dtype}"
            )
        if target.shape[0] != B:
            raise ValueError(f"target has {target.shape[0]} labels but input has B = {B} rows")
        low, high = torch.aminmax(target) if B else (0, 0)
        if low < 0 or high >= C:
            bad = low.item() if low < 0 else high.item()
            raise ValueError(f"target holds label {bad}, outside [0, {C}) (input has C = {C})")
    elif target.dim() == 2:
        if not target.is_floating_point():
            raise TypeError(
                f"target of shape (B, C_y) must hold probabilities Pop(y|x), got dtype "
                f"{target.dtype}"
            )
        if target.shape[0] != B:
            raise ValueError(f"target has {target.shape[0]} rows but input has B = {B} rows")
        if target.shape[1] == 0:
            raise ValueError("target has no label classes (C_y = 0)")
        _check_distributions(target, "target")
    else:
        raise ValueError(
            "target must be (B,) class indices or (B, C_y) rows Pop(y|x), "
            f"got shape {tuple(target.shape)}"
        )


def _check_arguments(input: Any, target: Any, probs: Any, group: Any) -> None:
    check_group(group)
    _check_input(input, probs, group)
    _check_target(target, input)


def _batch_size(input: torch.Tensor, target: torch.Tensor, group: Any) -> int:
    """N, the examples of all ranks of `group` together, once every rank is seen to have
    the same C and the same kind of target; every rank raises the same error, none waits.
    B itself without a group (`_check_input` has refused B = 0)."""
    if group is None:
        return input.shape[0]
    C_y = target.shape[1] if target.dim() == 2 else 0
    here = torch.tensor([input.shape[0], input.shape[1], C_y], device=input.device)
    # rows: ranks; columns: B, C, C_y (0 for class indices)
    shapes = all_gather(here, group).cpu()
    for column, name in ((1, "input's classes C"), (2, "target's C_y (0 for class indices)")):
        values = shapes[:, column]
        if (values != values[0]).any():
            raise ValueError(f"group: the ranks disagree on {name}: {values.tolist()} by rank")
    N = int(shapes[:, 0].sum())
    if N == 0:
        raise ValueError(
            "input is empty on every rank of group: I(y; ŷ) needs at least one example"
        )
    return N


def _check_sums(s: torch.Tensor) -> None:
    """Every NaN of Q (from NaN or +inf logits, or a row of only −inf) reaches s = Σ_k S."""
    if torch.isnan(s).any():
        raise ValueError("input holds NaN, +inf, or a row of only −inf: Q(ŷ|x) is undefined")


# ---------------------------------------------------------------------------- float64 reference


def mutual_information_reference(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    probs: bool = False,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """I(y; ŷ) from the dense joint (C_y × C), computed in `dtype`, differentiable by autograd.

    The independent reference for tests and claims: plain torch ops, no chunks, no hand
    backward. Pop(y) is held fixed (the targets are data), as in `mutual_information`.
    """
    _check_arguments(input, target, probs, None)
    B, C = input.shape
    Q = input.to(dtype) if probs else torch.softmax(input.to(dtype), 1)
    # one_hot takes int64 indices only; labels may come in any integer dtype
    Pop_y_x = (
        nn.functional.one_hot(target.long(), C).to(dtype) if target.dim() == 1 else target.to(dtype)
    )
    # labels of no example add 0 to I; dropped, so that autograd never meets ln 0 for them
    Pop_y_x = Pop_y_x[:, Pop_y_x.sum(0) > 0]
    # P(y, ŷ) = (1/B) Σ_b Pop(y|x_b) Q(ŷ|x_b)
    P = Pop_y_x.T @ Q / B
    # Pop(y) = (1/B) Σ_b Pop(y|x_b);  P(ŷ) = Σ_y P(y, ŷ)
    Pop_y, P_yhat = Pop_y_x.mean(0), P.sum(0)
    # I = Σ P ln P − Σ_y (Σ_ŷ P) ln Pop(y) − Σ_ŷ P(ŷ) ln P(ŷ), each 0 ln 0 = 0
    return _xlogx(P).sum() - torch.xlogy(P.sum(1), Pop_y).sum() - _xlogx(P_yhat).sum()


def _xlogx(P: torch.Tensor) -> torch.Tensor:
    """P ln P with 0 ln 0 = 0 in value and gradient. torch.xlogy(P, P) has the gradient
    P/P = NaN at P = 0, which masked logits (−inf, Q = 0 exactly) reach; the limit of the
    gradient through Q = softmax(z) is 0 there, as in the hand backward."""
    positive = P > 0
    return torch.where(positive, P * torch.log(torch.where(positive, P, 1.0)), 0.0)


# ---------------------------------------------------------------------------- the joint


def _compute_dtype(input: torch.Tensor) -> torch.dtype:
    """float32 for half-precision input: sums over the batch need more than 8-bit mantissas."""
    return torch.float32 if input.dtype in _HALF else input.dtype


def _chunk_rows(input: torch.Tensor) -> int:
    if input.device.type != "cpu":
        return input.shape[0]
    return max(1, _CHUNK_ELEMENTS // input.shape[1])


def _chunks(B: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, B)) for a in range(0, B, step)]


class _Targets(NamedTuple):
    """The targets as the rows of S that each example adds to.

    Class indices: `index[b]` is example b's row of S, and `counts` the examples of every
    label present. With logits, when most examples are alone with their label (large C),
    those (`single[b]`) get no row of S: for them S[k] = Q[b], so ln S[k] = z[b] −
    logsumexp z[b] is known without a logarithm per entry (their index is −1). Label rows:
    `Pop` is Pop(y|x) itself. n[k] = Σ_b Pop(k|x_b) for the rows of S.
    """

    index: torch.Tensor | None
    Pop: torch.Tensor | None
    single: torch.Tensor | None
    n: torch.Tensor
    counts: torch.Tensor


def _targets(
    target: torch.Tensor,
    input_classes: int,
    probs: bool,
    dtype: torch.dtype,
    N: int,
    group: Any = None,
) -> _Targets:
    """With a group the label counts are those of all its ranks: every rank then gives each
    label the same row, whether or not its shard holds an example of that label."""
    if target.dim() == 2:
        Pop = target.to(dtype)
        # n[k] = Σ_b Pop(k|x_b) over the examples of every rank
        n = all_sum(Pop.sum(0), group)
        present = n > 0
        # labels of no example add 0 to I: no row
        if not present.all():
            Pop, n = Pop[:, present], n[present]
        return _Targets(None, Pop, None, n, n)
    # indexing takes int64 (uint8 would be read as a mask, int8 and int16 are refused);
    # labels may come in any integer dtype, and the copy is O(B)
    target = target.long()
    # the labels present, in order, and each example's label among them: O(B + C), no sort
    per_class = all_sum(torch.bincount(target, minlength=input_classes), group)
    present = per_class > 0
    inverse = (present.cumsum(0) - 1)[target]
    counts = per_class[present].to(dtype)
    alone = counts == 1
    # worth it for most of the batch only (the others then take a second pass), and not for
    # probabilities, which need ln Q per entry anyway
    if probs or 2 * int(alone.sum()) <= N:
        return _Targets(inverse, None, None, counts, counts)
    kept = ~alone
    # kept labels get rows 0, 1, … in order
    row = torch.where(kept, kept.cumsum(0) - 1, -1)
    return _Targets(row[inverse], None, alone[inverse], counts[kept], counts)


def _others(targets: _Targets, a: int, b: int) -> torch.Tensor:
    """Positions, within rows a:b, of the examples that are not single."""
    return (~targets.single[a:b]).nonzero().squeeze(1)


def _sum_xlogx(S: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """Σ S ln S with 0 ln 0 = 0, in float64, using `scratch` (S's shape) for ln S."""
    # ln 0 = −inf is replaced by 0 before it meets its factor S = 0
    ln_S = torch.log(S, out=scratch).nan_to_num_(nan=0.0, neginf=0.0)
    # torch's pairwise sum: a dot product (vdot) accumulates in float32 lanes, 1e-5 off
    return ln_S.mul_(S).sum().double()


def _softmax_xlogx(z: torch.Tensor, Q: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """Σ_c Q ln Q of each row, for Q = softmax(z) by rows, from z: no logarithm per entry."""
    z = z.to(Q.dtype)
    m = z.amax(1, keepdim=True)
    # ln Q[b, c] = (z[b, c] − m[b]) + ln max_c Q[b, c], with m[b] = max_c z[b, c]: the
    # largest Q of a row is at least 1/C, so its logarithm is accurate, and z − m <= 0
    # keeps the products Q (z − m) small wherever Q is
    # Σ_c Q ln Q = Σ_c Q (z − m) + ln max_c Q                (Σ_c Q = 1)
    products = torch.sub(z, m, out=scratch).mul_(Q)
    sums = products.sum(1)
    _zero_masked_products_(products, sums)
    return sums + Q.amax(1).log()


def _zero_masked_products_(products: torch.Tensor, sums: torch.Tensor) -> None:
    """Set to 0 the products Q[b, c]·t[b, c] that are 0·(±inf) = NaN, and redo their rows'
    sums (`sums[b]` = Σ_c products[b, c]), in place.

    A logit of −inf (a masked class), or one so far below the row's largest that z − m
    overflows, has Q = 0 exactly, and the term it stands in, Q ln Q or Q ∂I/∂Q, has the
    limit 0 there. Only the rows whose sum came out NaN are touched: the check reads the
    (B,) sums, never the (B, C) products (on a GPU it waits for them: one host sync). NaN
    or +inf logits give a NaN row of Q, hence of s, which `_check_sums` refuses anyway.
    """
    bad = sums.isnan()
    if not bad.any():
        return
    fixed = products[bad]
    products[bad] = fixed.masked_fill_(fixed.isnan(), 0.0)
    sums[bad] = fixed.sum(1)


def _joint(
    input: torch.Tensor, targets: _Targets, probs: bool, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(joint, Σ_single Σ_c Q ln Q): the rows of `joint` are S and then s = Σ_b Q[b], and
    the second the entropy terms of single examples (float64), summed chunk by chunk."""
    B, C = input.shape
    step = _chunk_rows(input)
    single = targets.single
    # S and s in one buffer, for one all-reduce across ranks
    joint = input.new_zeros(targets.n.shape[0] + 1, C, dtype=dtype)
    S, s = joint[:-1], joint[-1]
    sum_single = input.new_zeros((), dtype=torch.float64)
    Q_scratch = None if probs else input.new_empty(min(step, B), C, dtype=dtype)
    scratch = None if single is None else torch.empty_like(Q_scratch)
    for a, b in _chunks(B, step):
        x = input[a:b]
        Q = x.to(dtype) if probs else torch.softmax(x, 1, dtype=dtype, out=Q_scratch[: b - a])
        s += Q.sum(0)
        if targets.Pop is not None:
            # S += Pop(y|x)ᵀ Q over the chunk
            S.addmm_(targets.Pop[a:b].T, Q)
            continue
        # S[k] += Q[b] for the examples b of label k: only labels present have a row
        if single is None:
            S.index_add_(0, targets.index[a:b], Q)
            continue
        others = _others(targets, a, b)
        S.index_add_(0, targets.index[a:b][others], Q[others])
        xlogx = _softmax_xlogx(x, Q, scratch[: b - a])
        sum_single += xlogx.masked_fill_(~single[a:b], 0).sum().double()
    return joint, sum_single


def _sum_joint_xlogx(S: torch.Tensor) -> torch.Tensor:
    """Σ S ln S over the rows of S, a chunk of rows at a time."""
    step = _chunk_rows(S)
    scratch = torch.empty_like(S[:step])
    return sum(
        (_sum_xlogx(S_k, scratch[: S_k.shape[0]]) for S_k in S.split(step)),
        start=S.new_zeros((), dtype=torch.float64),
    )


def _mutual_information(
    sum_SlnS: torch.Tensor, S: torch.Tensor, s: torch.Tensor, n: torch.Tensor, N: int
) -> torch.Tensor:
    """I = (1/N) Σ S ln (S N/(n s)) in float64, from Σ S ln S over every example's row."""
    # I = (1/N) (Σ S ln S − Σ_k r[k] ln n[k] − Σ s ln s + ln N Σ s), r[k] = Σ_c S[k, c];
    # on the simplex r = n and Σ s = N, but written so, I stays the definition for any
    # Q >= 0 and Λ/N stays its gradient (single examples have r = n = 1: no term)
    r, s, n = S.sum(1).double(), s.double(), n.double()
    terms = sum_SlnS - torch.xlogy(r, n).sum() - torch.xlogy(s, s).sum()
    return (terms + math.log(N) * s.sum()) / N


def _pointwise_information_(
    S: torch.Tensor, s: torch.Tensor, n: torch.Tensor, N: int
) -> torch.Tensor:
    """Λ = ln (S/s) − ln (n/N), 0 where S = 0, in S's storage (rows of S and n match)."""
    # Λ[k, c] = ln (S[k, c]/s[c]) − ln (n[k]/N)
    Lam = S.div_(s).log_().sub_(torch.log(n / N).unsqueeze(1))
    # where S = 0 (ln 0 = −inf, or 0/0 in a column no example predicts) Λ only ever meets
    # the factor Q = 0 (or Pop = 0), so any finite value is exact there: 0
    return Lam.nan_to_num_(nan=0.0, neginf=0.0)


def _sums(
    input: torch.Tensor, targets: _Targets, probs: bool, dtype: torch.dtype, group: Any = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, s, Σ S ln S) of the batch of all ranks of `group`, the last over every row of S,
    single examples' included."""
    joint, sum_single = _joint(input, targets, probs, dtype)
    # S[k, c] = Σ_b Pop(k|x_b) Q[b, c], s[c] = Σ_b Q[b, c] and Σ_single Σ_c Q ln Q are sums
    # over examples: each rank's are summed over the ranks, before any logarithm
    S, s = all_sum_(joint, group)[:-1], joint[-1]
    sum_single = all_sum(sum_single, group)
    _check_sums(s)
    return S, s, _sum_joint_xlogx(S) + sum_single


def _forward(
    input: torch.Tensor, targets: _Targets, probs: bool, N: int, group: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(I in input's dtype, Λ, s), of the batch of N examples on the ranks of `group`."""
    S, s, sum_SlnS = _sums(input, targets, probs, targets.n.dtype, group)
    information = _mutual_information(sum_SlnS, S, s, targets.n, N)
    return information.to(input.dtype), _pointwise_information_(S, s, targets.n, N), s


# ---------------------------------------------------------------------------- hand backward


def _gradient_rows(
    x: torch.Tensor,
    targets: _Targets,
    Lam: torch.Tensor,
    ln_s: torch.Tensor,
    a: int,
    out: torch.Tensor,
) -> torch.Tensor:
    """G[b, c] = N ∂I/∂Q[b, c] = Σ_k Pop(k|x_b) Λ[k, c] for the chunk of rows x from a on
    (Λ[y_b, c] for class indices), written into `out`."""
    b = a + x.shape[0]
    if targets.Pop is not None:
        return torch.mm(targets.Pop[a:b], Lam, out=out)
    if targets.single is None:
        return torch.index_select(Lam, 0, targets.index[a:b], out=out)
    # a single example: Λ[y_b, c] = ln Q[b, c] − ln s[c] + ln N
    #   = z[b, c] − ln s[c] + (ln N − logsumexp z[b]), and the last term, constant along the
    # row, cancels through the softmax (Σ_c ∂Q[b, c]/∂z = 0): G = z − ln s will do
    G = torch.sub(x, ln_s, out=out)
    # the other examples read their label's row of Λ
    others = _others(targets, a, b)
    G[others] = Lam[targets.index[a:b][others]]
    return G


def _softmax_backward_(
    Q: torch.Tensor, G: torch.Tensor, scale: torch.Tensor, *, masked: bool
) -> torch.Tensor:
    """scale·∂I/∂z from Q and G = N ∂I/∂Q, in Q's storage (G is overwritten). `masked`:
    G may be −inf where Q = 0 (single examples' G = z − ln s at logits of −inf)."""
    # Q∘G, and ḡ[b] = Σ_c Q[b, c] G[b, c]
    G.mul_(Q)
    g_bar = G.sum(1, keepdim=True)
    if masked:
        # Q∘G = 0·(−inf) there: its limit is 0
        _zero_masked_products_(G, g_bar.view(-1))
    # ∂I/∂z = (Q∘G − Q ḡ)/N, times the upstream gradient
    return Q.mul_(g_bar.mul_(-scale)).addcmul_(G, scale)


def _backward(
    grad: torch.Tensor,
    input: torch.Tensor,
    targets: _Targets,
    Lam: torch.Tensor,
    s: torch.Tensor,
    probs: bool,
    N: int,
) -> torch.Tensor:
    """∂(grad·I)/∂input from Λ, chunk by chunk; for logits Q is recomputed in the rows of
    the gradient itself, so that nothing of the input's size is allocated but the gradient.
    N counts the examples of all ranks: Λ and N are global, the rows of input this rank's."""
    B, C = input.shape
    dtype = Lam.dtype
    step = _chunk_rows(input)
    scale = grad.to(dtype) / N
    out = torch.empty_like(input)
    direct = out.dtype == dtype
    G_scratch = input.new_empty(min(step, B), C, dtype=dtype)
    Q_scratch = None if direct or probs else torch.empty_like(G_scratch)
    # ln s, where s = 0 any finite value (it meets Q = 0 only)
    ln_s = torch.log(s).nan_to_num_(neginf=0.0)
    for a, b in _chunks(B, step):
        x = input[a:b]
        G = _gradient_rows(x, targets, Lam, ln_s, a, G_scratch[: b - a])
        if probs:
            # ∂I/∂Q = G/N
            out[a:b].copy_(G.mul_(scale))
            continue
        Q = torch.softmax(x, 1, dtype=dtype, out=out[a:b] if direct else Q_scratch[: b - a])
        dz = _softmax_backward_(Q, G, scale, masked=targets.single is not None)
        if not direct:
            out[a:b].copy_(dz)
    return out


# ---------------------------------------------------------------------------- autograd


class _MutualInformation(torch.autograd.Function):
    """Saves Λ (a row per label of several examples, or per label row) and s beside the
    input and the targets; for logits Q is recomputed from the input in backward. With a
    group, forward all-reduces the sums; backward is local (see the module's docstring)."""

    @staticmethod
    def forward(input, targets, probs, N, group):
        return _forward(input, targets, probs, N, group)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, targets, probs, N, _group = inputs
        _information, Lam, s = output
        ctx.save_for_backward(input, Lam, s, *targets)
        ctx.mark_non_differentiable(Lam, s)
        ctx.probs, ctx.N = probs, N

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _dLam, _ds):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        input, Lam, s, *targets = ctx.saved_tensors
        dinput = _backward(grad, input, _Targets(*targets), Lam, s, ctx.probs, ctx.N)
        return dinput, None, None, None, None


# ---------------------------------------------------------------------------- public API


def mutual_information(
    input: torch.Tensor, target: torch.Tensor, *, probs: bool = False, group: Any = None
) -> torch.Tensor:
    """I(y; ŷ) in nats, the plug-in estimate over the batch; differentiable in `input`.

    input: (B, C) logits, or with probs=True probabilities Q(ŷ|x) (rows summing to 1, exact
    zeros allowed). target: (B,) integer class indices in [0, C), or (B, C_y) rows of
    Pop(y|x); it is data: no gradient flows into it.

    I is invariant to relabeling the prediction columns: a perfect predictor and any
    permutation of it both reach I = H(y) (evaluate with `matched_accuracy`). Nothing is
    clamped: 0 ln 0 = 0 is exact, classes no example predicts get finite (zero) gradients,
    and logits of ±100 give finite values and gradients in float32 and bfloat16.
    Half-precision input is summed in float32; the result has input's dtype.

    With class indices, memory beyond the input is O(C) plus small per-chunk buffers, and
    forward + backward costs about as much as `F.cross_entropy` on the same logits.

    Where a joint entry P(y, ŷ) is exactly 0 the partial derivative in Q is −∞; with
    probs=True the gradient there is 0, which through a softmax (Q = 0 there) is exact.

    group: a torch.distributed process group across which the batch is split (data
    parallelism). input and target are this rank's shard (any size, empty included, as
    long as the batch is not); C, and C_y for label rows, must agree across ranks. The
    joint's sums are all-reduced before any logarithm, so every rank gets the I of the
    whole batch, and its gradient w.r.t. this rank's rows is exactly the gradient of that
    I w.r.t. them (with the same upstream gradient on every rank, as when each rank
    backpropagates the same loss). Summed over ranks, these give the full-batch gradient
    of the parameters: DistributedDataParallel averages instead, so train with
    `MMILoss(group)`, which corrects for it. Every rank must call forward; backward needs
    no communication. Collective calls: 4 per forward, the largest (K + 1) × C for the K
    labels with several examples in the batch (or C_y label rows).
    """
    _check_arguments(input, target, probs, group)
    N = _batch_size(input, target, group)
    targets = _targets(target.detach(), input.shape[1], probs, _compute_dtype(input), N, group)
    information, _, _ = _MutualInformation.apply(input, targets, probs, N, group)
    return information


class MMILoss(nn.Module):
    """−I(y; ŷ) of logits and targets: minimizing it maximizes the mutual information.

    group: for DistributedDataParallel training, the process group over which the batch is
    split (`torch.distributed.group.WORLD` once the process group is initialized). Every
    rank's loss value is then −I of the whole batch, and its backward is W times the
    gradient of −I w.r.t. this rank's logits (W = world size): DDP's average over the ranks
    of the parameter gradients then equals the single-process gradient of −I of the whole
    batch. So an MMI term added to a loss that DDP averages as usual (a per-rank mean
    cross-entropy, say) keeps its weight. Outside DDP (no averaging) use
    `mutual_information(..., group=group)` directly.
    """

    def __init__(self, group: Any = None) -> None:
        super().__init__()
        self.group = check_group(group)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # value −I; gradient W ∂(−I)/∂logits, which DDP's average over the W ranks undoes
        loss = -mutual_information(logits, target, group=self.group)
        return undo_gradient_average(loss, self.group)
