"""Layer norm + activation, forward and backward, as fused Triton kernels.

The entry points `forward` and `backward` are what `infonorm.layer_norm` dispatches to for
backend="triton" (CUDA tensors, or CPU tensors under Triton's interpreter,
TRITON_INTERPRET=1):

    forward(x, A, B, *, scope, activation, eps)            -> (y, mean, rstd)
    backward(dy, x, A, B, mean, rstd, *, scope, activation) -> (dx, dA, dB)

with y = σ(A (x − μ) rstd + B), rstd = 1/sqrt(var + eps), var the biased (1/N) variance over
the last dim (scope="position") or the last two dims (scope="layer"), mean and rstd float32
of the statistics' shape, y and dx in x's dtype, dA in A's dtype and dB in B's dtype
(summed in float32). With G = dy σ'(A h + B) and h = (x − μ) rstd:

    dB[i] = Σ G,  dA[i] = Σ G h  (over everything but i)
    dx    = rstd (G A − mean(G A) − h mean(G A h))  (means over the statistic's N elements)

Which kernels run (see docs/kernels-layer-norm.md for the byte counts):

- scope="position", rows that fit in registers: `_layer_norm_fwd` (one read of x, one
  write of y) and `_layer_norm_bwd` (one read of x and dy, one write of dx, float32 partial
  rows of dA, dB) + `_sum_partial_rows`.
- scope="position", longer rows: `_layer_norm_fwd_looped` (statistics loop, then a
  normalizing loop re-reading the row from L2) and the split backward below with T = 1.
- scope="layer": split reductions (`_layer_norm_split`): statistics partials per unit of
  the layer, then the normalizing pass in reverse order; backward: partial sums, a
  per-layer combine, the dx pass, `_sum_partial_rows`.

Inputs may be strided: the kernels take the strides of x and dy as arguments, and no copy
is made as long as the leading dims (those before the normalized ones) merge into one
stride (any layout of the normalized dims themselves is read in place). Every reduction
runs in a fixed order: results are the same from run to run (no atomics, no locks).

The block sizes come from small heuristics (`_row_config`, `_split_config`) driven by the
module constants below, which tests and the GPU benchmark may change.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch
import triton

from infonorm.kernels._activation import NAMES as ACTIVATIONS
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

__all__ = ["ACTIVATIONS", "DTYPES", "SCOPES", "backward", "forward"]

# ------------------------------------------------------------------ tuning knobs
# per-row kernels (scope="position")
ROW_TILE_ELEMENTS = 4096  # elements per program tile (BLOCK_R rows × BLOCK_I) for short rows
MAX_ROW_FWD = 16384  # longest row (rounded up to a power of two) the forward keeps in registers
MAX_ROW_BWD = 8192  # the same for the backward (x, dy and two float32 sums per element)
LOOPED_BLOCK_I = 4096  # column block of the looped forward for longer rows
ROW_BWD_WARPS_PER_SM = 16  # warps of the persistent backward per multiprocessor
# split kernels (scope="layer", and the backward of long rows)
SPLIT_BLOCK_I = 4096  # widest column block
SPLIT_TILE_ELEMENTS = 4096  # elements per tile, BLOCK_T × BLOCK_I
SPLIT_UNIT_TILES = 8  # tiles per unit of the statistics and partial-sum passes
SPLIT_MAX_UNITS_PER_LAYER = 1024  # units C per layer (merged in registers by each program)
SPLIT_DX_WARPS_PER_SM = 16  # warps of the persistent dx pass per multiprocessor
# under Triton's CPU interpreter: pretend to have this many multiprocessors
INTERPRETER_MULTIPROCESSORS = 2


# ------------------------------------------------------------------ entry points


def forward(
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    *,
    scope: str,
    activation: str,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, rstd): y = σ(A (x − μ) rstd + B) in x's dtype, μ and rstd float32 of shape
    x.shape[:-2] (scope="layer") or x.shape[:-1] (scope="position")."""
    _check(x, A, B, scope=scope, activation=activation)
    X, R, _, _ = _as_rows(x, scope)
    A, B = A.contiguous(), B.contiguous()
    y = _empty(x.shape, dtype=x.dtype, device=x.device)
    Y, *_ = _as_rows(y, scope)
    mean = _empty((R,), dtype=torch.float32, device=x.device)
    rstd = _empty((R,), dtype=torch.float32, device=x.device)
    if R > 0:
        with _on_device(x):
            if scope == "position":
                _position_forward(X, Y, A, B, mean, rstd, float(eps), activation)
            else:
                _layer_forward(X, Y, A, B, mean, rstd, float(eps), activation)
    shape = _statistics_shape(x, scope)
    return y, mean.view(shape), rstd.view(shape)


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dA, dB) given dy = ∂loss/∂y and the forward's mean and rstd."""
    _check(x, A, B, scope=scope, activation=activation)
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    if dy.dtype not in DTYPES or dy.device != x.device:
        raise TypeError(f"dy must be a {_dtype_names()} tensor on {x.device}, got {dy.dtype}")
    X, R, _, I = _as_rows(x, scope)
    DY, *_ = _as_rows(dy, scope)
    A, B = A.contiguous(), B.contiguous()
    shape = _statistics_shape(x, scope)
    for name, stat in (("mean", mean), ("rstd", rstd)):
        if stat.shape != shape:
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(stat.shape)}")
    mean = mean.reshape(R).to(torch.float32).contiguous()
    rstd = rstd.reshape(R).to(torch.float32).contiguous()
    dx = _empty(x.shape, dtype=x.dtype, device=x.device)
    DX, *_ = _as_rows(dx, scope)
    dA = _empty((I,), dtype=A.dtype, device=x.device)
    dB = _empty((I,), dtype=B.dtype, device=x.device)
    if R == 0:
        return dx, dA.zero_(), dB.zero_()
    with _on_device(x):
        row = None
        if scope == "position":
            row = _row_config(R, I, x.element_size(), backward=True, device=x.device)
        if row is not None:
            partials = _position_backward(DY, X, A, B, mean, rstd, DX, activation, row)
        else:
            partials = _split_backward(DY, X, A, B, mean, rstd, DX, activation)
        _sum_partials(*partials, dA, dB)
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


def _on_device(x: torch.Tensor):
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


_INTERPRETED = type(_layer_norm_fwd).__name__ == "InterpretedFunction"


@functools.cache
def _cuda_properties(index: int):
    return torch.cuda.get_device_properties(index)


def _multiprocessors(device: torch.device) -> int:
    if device.type != "cuda":
        return INTERPRETER_MULTIPROCESSORS
    return _cuda_properties(device.index or 0).multi_processor_count


# ------------------------------------------------------------------ heuristics


def _pow2(n: int) -> int:
    return triton.next_power_of_2(max(1, n))


def _warps(tile_elements: int) -> int:
    """8 elements of a tile per thread (one 16-byte access of bf16, two of fp32), 1 to 16
    warps: at about 100 registers per thread (the backward kernels, read off the sm_90
    compiler's resource usage) that is 16 warps of one program per multiprocessor."""
    return min(16, _pow2(tile_elements // 256))


def _prefetch_two(tile_elements: int, element_size: int) -> bool:
    """Prefetch two tiles ahead when one tile of x and dy is under 32 KB (the bytes one
    multiprocessor should have in flight) and fits at 8 elements per thread."""
    fits = tile_elements <= 8 * 32 * 16
    return fits and 2 * tile_elements * element_size < 32 * 1024


@dataclass(frozen=True)
class RowConfig:
    """Per-row kernels: tiles of block_r rows × block_i columns; `programs` launched; for
    the backward, two tiles prefetched or one, A and B held in registers or re-read."""

    block_r: int
    block_i: int
    num_warps: int
    programs: int
    prefetch_two: bool = False
    ab_in_registers: bool = True


def _row_config(
    R: int, I: int, element_size: int, *, backward: bool, device: torch.device
) -> RowConfig | None:
    """The tile of the fused per-row kernels, or None when a row is too long for registers."""
    block_i = _pow2(I)
    if block_i > (MAX_ROW_BWD if backward else MAX_ROW_FWD):
        return None
    block_r = min(_pow2(R), max(1, ROW_TILE_ELEMENTS // block_i))
    elements = block_r * block_i
    num_warps = _warps(elements)
    tiles = triton.cdiv(R, block_r)
    if not backward:
        return RowConfig(block_r, block_i, num_warps, tiles)
    # persistent backward: ROW_BWD_WARPS_PER_SM warps per multiprocessor, each program
    # writing one partial row of dA and dB
    per_sm = max(1, ROW_BWD_WARPS_PER_SM // num_warps)
    programs = min(tiles, _multiprocessors(device) * per_sm)
    # fp32 rows of 16 elements per thread spill less with A and B re-read from L1
    ab_in_registers = element_size < 4 or elements <= 8 * 32 * num_warps
    return RowConfig(
        block_r, block_i, num_warps, programs, _prefetch_two(elements, element_size),
        ab_in_registers,
    )  # fmt: skip


@dataclass(frozen=True)
class SplitConfig:
    """Split kernels: units of chunk_t rows × block_i columns (ct × ci per layer), walked in
    tiles of block_t × block_i; the dx pass runs dx_programs × ci programs, prefetching one or
    two tiles."""

    block_t: int
    block_i: int
    chunk_t: int
    ct: int
    ci: int
    num_warps: int
    dx_programs: int
    prefetch_two: bool

    @property
    def units_per_layer(self) -> int:
        return self.ct * self.ci


def _split_config(R: int, T: int, I: int, element_size: int, device: torch.device) -> SplitConfig:
    block_i = min(_pow2(I), SPLIT_BLOCK_I)
    block_t = min(_pow2(T), max(1, SPLIT_TILE_ELEMENTS // block_i))
    ci = triton.cdiv(I, block_i)
    row_blocks = triton.cdiv(T, block_t)
    # SPLIT_UNIT_TILES tiles per unit, more if the layer would have too many units
    max_ct = max(1, SPLIT_MAX_UNITS_PER_LAYER // ci)
    tiles = min(row_blocks, max(SPLIT_UNIT_TILES, triton.cdiv(row_blocks, max_ct)))
    chunk_t = block_t * tiles
    num_warps = _warps(block_t * block_i)
    per_sm = max(1, SPLIT_DX_WARPS_PER_SM // num_warps)
    dx_programs = max(1, min(R * row_blocks, _multiprocessors(device) * per_sm // ci))
    prefetch_two = _prefetch_two(block_t * block_i, element_size)
    return SplitConfig(
        block_t, block_i, chunk_t, triton.cdiv(T, chunk_t), ci, num_warps, dx_programs,
        prefetch_two,
    )  # fmt: skip


# ------------------------------------------------------------------ launches


def _position_forward(X, Y, A, B, mean, rstd, eps: float, activation: str) -> None:
    R, _, I = X.shape
    config = _row_config(R, I, X.element_size(), backward=False, device=X.device)
    if config is None:
        block_i = min(LOOPED_BLOCK_I, _pow2(I))
        _layer_norm_fwd_looped[(R,)](
            X, Y, A, B, mean, rstd, I,
            X.stride(0), X.stride(2), Y.stride(0), Y.stride(2), eps,
            ACTIVATION=activation, BLOCK_I=block_i, num_warps=_warps(block_i),
        )  # fmt: skip
        return
    _layer_norm_fwd[(config.programs,)](
        X, Y, A, B, mean, rstd, R, I,
        X.stride(0), X.stride(2), Y.stride(0), Y.stride(2), eps,
        ACTIVATION=activation, BLOCK_R=config.block_r, BLOCK_I=config.block_i,
        num_warps=config.num_warps,
    )  # fmt: skip


def _layer_forward(X, Y, A, B, mean, rstd, eps: float, activation: str) -> None:
    R, T, I = X.shape
    config = _split_config(R, T, I, X.element_size(), X.device)
    C = config.units_per_layer
    units = R * C
    mean_partial = _empty((units,), dtype=torch.float32, device=X.device)
    m2_partial = _empty((units,), dtype=torch.float32, device=X.device)
    # two launches over all layers at once: launching per group of layers that fits in L2
    # (for the second pass to re-read x from there) measured 2× slower on an H200, the
    # launches costing more than the re-read saves (docs/kernels-layer-norm.md)
    _layer_stats_partial[(units,)](
        X, mean_partial, m2_partial, T, I, config.ct, config.ci, config.chunk_t,
        X.stride(0), X.stride(1), X.stride(2),
        BLOCK_T=config.block_t, BLOCK_I=config.block_i, num_warps=config.num_warps,
    )  # fmt: skip
    _layer_norm_fwd_split[(units,)](
        X, Y, A, B, mean_partial, m2_partial, mean, rstd,
        T, I, config.ct, config.ci, config.chunk_t, units,
        X.stride(0), X.stride(1), X.stride(2), Y.stride(0), Y.stride(1), Y.stride(2), eps,
        ACTIVATION=activation, BLOCK_T=config.block_t, BLOCK_I=config.block_i,
        BLOCK_C=_pow2(C), num_warps=config.num_warps,
    )  # fmt: skip


def _position_backward(DY, X, A, B, mean, rstd, DX, activation: str, config: RowConfig):
    R, _, I = X.shape
    P = config.programs
    dA_partial = _empty((P, I), dtype=torch.float32, device=X.device)
    dB_partial = _empty((P, I), dtype=torch.float32, device=X.device)
    _layer_norm_bwd[(P,)](
        DY, X, A, B, mean, rstd, DX, dA_partial, dB_partial, R, I,
        DY.stride(0), DY.stride(2), X.stride(0), X.stride(2), DX.stride(0), DX.stride(2),
        ACTIVATION=activation, BLOCK_R=config.block_r, BLOCK_I=config.block_i,
        PREFETCH_TWO=config.prefetch_two, AB_IN_REGISTERS=config.ab_in_registers,
        num_warps=config.num_warps,
    )  # fmt: skip
    return dA_partial, dB_partial


def _split_backward(DY, X, A, B, mean, rstd, DX, activation: str):
    R, T, I = X.shape
    config = _split_config(R, T, I, X.element_size(), X.device)
    C = config.units_per_layer
    sum_GA = _empty((R * C,), dtype=torch.float32, device=X.device)
    sum_GAh = _empty((R * C,), dtype=torch.float32, device=X.device)
    _layer_bwd_sums_partial[(R * C,)](
        DY, X, A, B, mean, rstd, sum_GA, sum_GAh, T, I, config.ct, config.ci, config.chunk_t,
        DY.stride(0), DY.stride(1), DY.stride(2), X.stride(0), X.stride(1), X.stride(2),
        ACTIVATION=activation, BLOCK_T=config.block_t, BLOCK_I=config.block_i,
        num_warps=config.num_warps,
    )  # fmt: skip
    mean_GA = _empty((R,), dtype=torch.float32, device=X.device)
    mean_GAh = _empty((R,), dtype=torch.float32, device=X.device)
    _layer_bwd_combine[(R,)](
        sum_GA, sum_GAh, mean_GA, mean_GAh, C, float(T * I), BLOCK_C=min(1024, _pow2(C))
    )
    Q = config.dx_programs
    dA_partial = _empty((Q, I), dtype=torch.float32, device=X.device)
    dB_partial = _empty((Q, I), dtype=torch.float32, device=X.device)
    _layer_norm_bwd_dx_split[(Q, config.ci)](
        DY, X, A, B, mean, rstd, mean_GA, mean_GAh, DX, dA_partial, dB_partial,
        R, T, I, triton.cdiv(T, config.block_t),
        DY.stride(0), DY.stride(1), DY.stride(2), X.stride(0), X.stride(1), X.stride(2),
        DX.stride(0), DX.stride(1), DX.stride(2),
        ACTIVATION=activation, BLOCK_T=config.block_t, BLOCK_I=config.block_i,
        PREFETCH_TWO=config.prefetch_two, num_warps=config.num_warps,
    )  # fmt: skip
    return dA_partial, dB_partial


def _sum_partials(dA_partial, dB_partial, dA, dB) -> None:
    P, I = dA_partial.shape
    # 32 columns (128-byte rows) per program on a GPU; wide blocks under the interpreter,
    # whose cost grows with the number of programs
    block_n = min(256 if _INTERPRETED else 32, _pow2(I))
    _sum_partial_rows[(triton.cdiv(I, block_n),)](
        dA_partial, dB_partial, dA, dB, P, I,
        BLOCK_P=min(64, _pow2(P)), BLOCK_N=block_n, num_warps=4,
    )  # fmt: skip
