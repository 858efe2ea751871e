"""Layer norm + activation, forward and backward, as fused Triton kernels.

The entry points `forward` and `backward` are what `infonorm.layer_norm` dispatches to for
backend="triton" (CUDA tensors, or CPU tensors under Triton's interpreter,
TRITON_INTERPRET=1):

    forward(x, A, B, *, scope, activation, eps, tuning=None)            -> (y, mean, rstd)
    backward(dy, x, A, B, mean, rstd, *, scope, activation, tuning=None) -> (dx, dA, dB)

with y = act(A (x − μ) rstd + B), rstd = 1/sqrt(var + eps), var the biased (1/N) variance over
the last dim (scope="position") or the last two dims (scope="layer"), mean and rstd float32
of the statistics' shape, y and dx in x's dtype, dA in A's dtype and dB in B's dtype
(summed in float32). With G = dy act'(A h + B) and h = (x − μ) rstd:

    dB[i] = Σ G,  dA[i] = Σ G h  (over everything but i)
    dx    = rstd (G A − mean(G A) − h mean(G A h))  (means over the statistic's N elements)

Which kernels run (see docs/kernels-layer-norm.md for the byte counts):

- scope="position", rows that fit in registers: `_layer_norm_fwd` (one read of x, one
  write of y) and `_layer_norm_bwd` (one read of x and dy, one write of dx, float32 partial
  rows of dA, dB) + `_sum_partial_rows` (skipped when one program did all rows).
- scope="position", longer rows: `_layer_norm_fwd_looped` (statistics loop, then a
  normalizing loop re-reading the row from L2) and the split backward below with T = 1.
- scope="layer": split reductions (`_layer_norm_split`): statistics partials per unit of
  the layer, then the normalizing pass in reverse order; backward: partial sums, a
  per-layer combine, the dx pass, `_sum_partial_rows`.

Inputs may be strided: the kernels take the strides of x and dy as arguments, and no copy
is made as long as the leading dims (those before the normalized ones) merge into one
stride (any layout of the normalized dims themselves is read in place). Every reduction
runs in a fixed order: results are the same from run to run (no atomics, no locks).

Block sizes, warps and grids come from `_layer_norm_config` (a `Tuning`, cached per shape);
`tuning=None` is its defaults.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import functools

import torch

from infonorm.kernels._activation import NAMES as ACTIVATIONS
from infonorm.kernels._launch import launch
from infonorm.kernels._layer_norm_config import (
    DEFAULT,
    INTERPRETER_MULTIPROCESSORS,
    RowConfig,
    SplitConfig,
    Tuning,
    cdiv,
    pow2,
    row_config,
    split_config,
    warps,
)
from infonorm.kernels._layer_norm_position import (
    _layer_norm_bwd,
    _layer_norm_fwd,
    _layer_norm_fwd_looped,
    _sum_partial_rows,
)
from infonorm.kernels._layer_norm_split import (
    _layer_bwd_combine,
    _layer_bwd_sums_partial,
    _layer_norm_bwd_dx_split,
    _layer_norm_fwd_split,
    _layer_stats_partial,
)
from infonorm.layer_norm import _KERNEL_DTYPES as DTYPES
from infonorm.layer_norm import SCOPES, _as_rows, _statistics_shape, check_arguments

__all__ = ["ACTIVATIONS", "DTYPES", "SCOPES", "Tuning", "backward", "forward"]


# ------------------------------------------------------------------ entry points


def forward(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: str,
    activation: str,
    eps: float,
    tuning: Tuning | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, rstd): y = act(A (x − μ) rstd + B) in x's dtype, μ and rstd float32 of shape
    x.shape[:-2] (scope="layer") or x.shape[:-1] (scope="position")."""
    _check(x, A, B, scope=scope, activation=activation)
    tuning = DEFAULT if tuning is None else tuning
    X, R, T, I = _as_rows(x, scope)
    A, B = A.contiguous(), B.contiguous()
    y = _empty(x.shape, dtype=x.dtype, device=x.device)
    shape = _statistics_shape(x, scope)
    mean = _empty(shape, dtype=torch.float32, device=x.device)
    rstd = _empty(shape, dtype=torch.float32, device=x.device)
    if R > 0:
        run = _position_forward if scope == "position" else _layer_forward
        args = (X, y.view(R, T, I), A, B, mean, rstd, float(eps), activation, tuning)
        if _off_current_device(x):
            with torch.cuda.device(x.device):
                run(*args)
        else:
            run(*args)
    return y, mean, rstd


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    *,
    scope: str,
    activation: str,
    tuning: Tuning | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dA, dB) given dy = ∂loss/∂y and the forward's mean and rstd."""
    _check(x, A, B, scope=scope, activation=activation)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    if dy.dtype not in DTYPES or dy.device != x.device:
        raise TypeError(f"dy must be a {_dtype_names()} tensor on {x.device}, got {dy.dtype}")
    tuning = DEFAULT if tuning is None else tuning
    X, R, T, I = _as_rows(x, scope)
    DY, *_ = _as_rows(dy, scope)
    A, B = A.contiguous(), B.contiguous()
    shape = _statistics_shape(x, scope)
    for name, stat in (("mean", mean), ("rstd", rstd)):
        if stat.shape != shape:
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(stat.shape)}")
    mean, rstd = _float32_contiguous(mean), _float32_contiguous(rstd)
    dx = _empty(x.shape, dtype=x.dtype, device=x.device)
    dA = _empty((I,), dtype=A.dtype, device=x.device)
    dB = _empty((I,), dtype=B.dtype, device=x.device)
    if R == 0:
        return dx, dA.zero_(), dB.zero_()
    args = (DY, X, A, B, mean, rstd, dx.view(R, T, I), dA, dB, activation, scope, tuning)
    if _off_current_device(x):
        with torch.cuda.device(x.device):
            _backward(*args)
    else:
        _backward(*args)
    return dx, dA, dB


# ------------------------------------------------------------------ checks and views


def _check(x, A, B, *, scope: str, activation: str) -> None:
    """The op's contract (`infonorm.layer_norm.check_arguments`), then what the kernels add:
    a Triton form of the activation, a kernel dtype, a CUDA tensor or the interpreter."""
    check_arguments(x, A, B, scope=scope, activation=activation)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} has no Triton kernel: use backend='torch'")
    if x.dtype not in DTYPES:
        raise TypeError(
            f"x must be a {_dtype_names()} tensor for the Triton kernels, got {x.dtype} "
            "(use backend='torch' for float64)"
        )
    if not x.is_cuda and not _INTERPRETED:
        raise ValueError(
            f"x is on {x.device}: the Triton kernels run on CUDA tensors, or on CPU tensors "
            "under Triton's interpreter (TRITON_INTERPRET=1 set before importing infonorm.kernels)"
        )


def _dtype_names() -> str:
    return "float32, bfloat16 or float16"


def _empty(shape, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Every output and scratch buffer comes from here (tests poison them with NaN)."""
    return torch.empty(shape, dtype=dtype, device=device)


_INTERPRETED = type(_layer_norm_fwd).__name__ == "InterpretedFunction"


def _off_current_device(x: torch.Tensor) -> bool:
    """Whether x is on a CUDA device other than the current one: kernels launch on the
    current device, and switching costs host time, so switch only then."""
    return x.is_cuda and x.device.index != torch.cuda.current_device()


def _float32_contiguous(stat: torch.Tensor) -> torch.Tensor:
    """A statistic as contiguous float32 memory (what the forward returned, as it is)."""
    if stat.dtype == torch.float32 and stat.is_contiguous():
        return stat
    return stat.to(torch.float32).contiguous()


@functools.cache
def _cuda_multiprocessors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _multiprocessors(device: torch.device, tuning: Tuning) -> int:
    if tuning.multiprocessors is not None:
        return tuning.multiprocessors
    if device.type != "cuda":
        return INTERPRETER_MULTIPROCESSORS
    return _cuda_multiprocessors(device.index)


def _direct(tuning: Tuning) -> bool:
    return tuning.launch == "direct" and not _INTERPRETED


# ------------------------------------------------------------------ launches


def _position_forward(X, Y, A, B, mean, rstd, eps: float, activation: str, tuning: Tuning):
    R, _, I = X.shape
    args = (X, Y, A, B, mean, rstd)
    strides = ((X.stride(0), X.stride(2)), (Y.stride(0), Y.stride(2)))
    mp = _multiprocessors(X.device, tuning)
    config = row_config(R, I, X.element_size(), backward=False, multiprocessors=mp, tuning=tuning)
    if config is None:
        block_i = min(tuning.looped_block_i, pow2(I))
        meta = {
            "ACTIVATION": activation,
            "BLOCK_I": block_i,
            "num_warps": warps(block_i, tuning.forward_elements_per_thread),
        }
        launch(
            _layer_norm_fwd_looped, (R,), (*args, I, *strides, eps), meta, direct=_direct(tuning)
        )
        return
    meta = {
        "ACTIVATION": activation,
        "BLOCK_R": config.block_r,
        "BLOCK_I": config.block_i,
        "AHEAD": config.ahead,
        # one tile per program has nothing to pipeline: one compiled kernel for both
        "PIPELINE": tuning.pipelining if config.ahead else "hand",
        "num_warps": config.num_warps,
    }
    launch(
        _layer_norm_fwd, (config.programs,), (*args, R, I, *strides, eps), meta,
        direct=_direct(tuning),
    )  # fmt: skip


def _layer_forward(X, Y, A, B, mean, rstd, eps: float, activation: str, tuning: Tuning):
    R, T, I = X.shape
    mp = _multiprocessors(X.device, tuning)
    config = split_config(R, T, I, X.element_size(), multiprocessors=mp, tuning=tuning)
    units = R * config.units_per_layer
    geometry = (config.ct, config.ci, config.chunk_t)
    partial = _empty((2, units), dtype=torch.float32, device=X.device)  # (mean, M2) per unit
    meta = {
        "BLOCK_T": config.block_t,
        "BLOCK_I": config.block_i,
        "STAGES": config.stats_stages,
        "num_warps": config.forward_warps,
    }
    direct = _direct(tuning)
    # two launches over all layers at once: launching per group of layers that fits in L2
    # (for the second pass to re-read x from there) measured 2× slower on an H200, the
    # launches costing more than the re-read saves (docs/kernels-layer-norm.md)
    launch(
        _layer_stats_partial, (units,), (X, partial, T, I, geometry, X.stride()), meta,
        direct=direct,
    )  # fmt: skip
    args = (X, Y, A, B, partial, mean, rstd, T, I, geometry, X.stride(), Y.stride(), eps)
    meta = {"ACTIVATION": activation, "BLOCK_C": pow2(config.units_per_layer), **meta}
    launch(_layer_norm_fwd_split, (units,), args, meta, direct=direct)


def _backward(DY, X, A, B, mean, rstd, DX, dA, dB, activation: str, scope: str, tuning: Tuning):
    R, T, I = X.shape
    mp = _multiprocessors(X.device, tuning)
    size = X.element_size()
    row = None
    if scope == "position":
        row = row_config(R, I, size, backward=True, multiprocessors=mp, tuning=tuning)
    if row is not None:
        programs = row.programs
    else:
        split = split_config(R, T, I, size, multiprocessors=mp, tuning=tuning)
        programs = split.dx_programs
    # each program sums G h and G over its rows into one partial row; with one program,
    # that row is dA and dB themselves
    if programs == 1:
        partials = (dA, dB)
    else:
        partials = _empty((2, programs, I), dtype=torch.float32, device=X.device).unbind(0)
    inputs = (DY, X, A, B, mean, rstd, DX, *partials)
    if row is not None:
        _position_backward(inputs, activation, row, tuning)
    else:
        _split_backward(inputs, activation, split, tuning)
    if programs > 1:
        _sum_partials(*partials, dA, dB, tuning)


def _position_backward(inputs, activation: str, config: RowConfig, tuning: Tuning) -> None:
    DY, X, *_, DX, _, _ = inputs
    R, _, I = X.shape
    strides = tuple((t.stride(0), t.stride(2)) for t in (DY, X, DX))
    meta = {
        "ACTIVATION": activation,
        "BLOCK_R": config.block_r,
        "BLOCK_I": config.block_i,
        "AHEAD": config.ahead,
        "PIPELINE": tuning.pipelining,
        "AB_IN_REGISTERS": config.ab_in_registers,
        "num_warps": config.num_warps,
    }
    launch(
        _layer_norm_bwd, (config.programs,), (*inputs, R, I, *strides), meta,
        direct=_direct(tuning),
    )  # fmt: skip


def _split_backward(inputs, activation: str, config: SplitConfig, tuning: Tuning) -> None:
    DY, X, A, B, mean, rstd, DX, dA_partial, dB_partial = inputs
    R, T, I = X.shape
    C = config.units_per_layer
    geometry = (config.ct, config.ci, config.chunk_t)
    tiles = {"BLOCK_T": config.block_t, "BLOCK_I": config.block_i}
    direct = _direct(tuning)
    # Σ G A and Σ G A h of every unit, then their means per layer
    sums = _empty((2, R * C), dtype=torch.float32, device=X.device)
    args = (DY, X, A, B, mean, rstd, sums, T, I, geometry, DY.stride(), X.stride())
    meta = {
        "ACTIVATION": activation,
        **tiles,
        "PIPELINE": tuning.pipelining,
        "num_warps": config.backward_warps,
    }
    launch(_layer_bwd_sums_partial, (R * C,), args, meta, direct=direct)
    means = _empty((2, R), dtype=torch.float32, device=X.device)
    meta = {"BLOCK_C": min(1024, pow2(C))}
    launch(_layer_bwd_combine, (R,), (sums, means, C, float(T * I)), meta, direct=direct)
    args = (DY, X, A, B, mean, rstd, means, DX, dA_partial, dB_partial, R, T, I)
    strides = (DY.stride(), X.stride(), DX.stride())
    meta = {
        "ACTIVATION": activation,
        **tiles,
        "AHEAD": config.ahead,
        "PIPELINE": tuning.pipelining,
        "num_warps": config.backward_warps,
    }
    grid = (config.dx_programs, config.ci)
    launch(_layer_norm_bwd_dx_split, grid, (*args, *strides), meta, direct=direct)


def _sum_partials(dA_partial, dB_partial, dA, dB, tuning: Tuning) -> None:
    P, I = dA_partial.shape
    # 32 columns (128-byte rows) per program on a GPU; wide blocks under the interpreter,
    # whose cost grows with the number of programs
    block_n = min(256 if _INTERPRETED else 32, pow2(I))
    meta = {"BLOCK_P": min(64, pow2(P)), "BLOCK_N": block_n, "num_warps": 4}
    args = (dA_partial, dB_partial, dA, dB, P, I)
    launch(_sum_partial_rows, (cdiv(I, block_n),), args, meta, direct=_direct(tuning))
