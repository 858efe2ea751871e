"""The mutual-information objective's sums over a batch, forward and backward, as Triton kernels.

The entry points `forward` and `backward` are what `infonorm.mutual_information` calls for
backend="triton" (CUDA tensors, or CPU tensors under Triton's interpreter,
TRITON_INTERPRET=1); everything between them (I itself, Λ, ln s, the scale) is torch code
there:

    forward(z, rows, R)                        -> (S, s, lse, sum_single)
    backward(z, rows, lse, Lam, ln_s, scale)   -> dz

z: (B, C) logits, float32, bfloat16 or float16, any strides (read in place); −inf entries
are masked classes (a row of only −inf makes Q undefined: NaN reaches s and S). rows: (B,)
int64, per example the row r ∈ [0, R) of S it adds to, −2 for an example alone with its
label (no row of S), −1 for an example left out. With Q[b] = softmax(z[b]):

    S[r]       = Σ_{b: rows_b = r} Q[b]                       (R, C) float32; 0 for an empty row
    s          = Σ_{b: rows_b ≠ −1} Q[b]                       (C,) float32
    lse[b]     = logsumexp(z[b])                               (B,) float32, every example,
                                                                   ignored ones included
    sum_single = Σ_{b: rows_b = −2} Σ_c Q[b, c] ln Q[b, c]     () float32, 0 ln 0 = 0
    dz[b]      = scale · Q[b] ∘ (G[b] − Σ_c Q[b, c] G[b, c])   (B, C) in z's dtype,
                 G[b] = Lam[rows_b] (rows_b ≥ 0), z[b] − ln_s (rows_b = −2); dz[b] = 0 for
                 rows_b = −1, and 0 wherever z = −inf

Lam (R, C) and ln_s (C,) float32 must be finite; scale is a 0-dim float32 tensor, read on
the device. A row value outside [−2, R) is treated as −1 (never written out of bounds).

Nothing here reads a tensor's value on the host: shapes decide every launch. forward sorts
rows on the device (torch.sort, stable) and launches 2 kernels (3 for rows longer than
MAX_ROW_FWD); backward launches 1. Every sum runs in a fixed order (no atomics): results
repeat bit for bit on the same device. Kernels, grids and bytes:
docs/kernels-mutual-information.md.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import torch
import triton

from infonorm.kernels._mutual_information import (
    _mi_bwd,
    _mi_fwd_chunks,
    _mi_fwd_combine,
    _mi_logsumexp,
)

__all__ = ["DTYPES", "backward", "forward"]

DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# ------------------------------------------------------------------ tuning knobs
TILE_ELEMENTS = 4096  # elements per tile, BLOCK_R examples × BLOCK_C columns
GROUP_ELEMENTS = 8192  # BLOCK_R² × BLOCK_C: the forward's per-row sums within a tile
MAX_ROW_FWD = 8192  # longest row (rounded up to a power of two) the forward holds in one block
MAX_ROW_BWD = 8192  # the same for the backward
LOOPED_BLOCK_C = 4096  # column block for longer rows
# forward programs per multiprocessor: at 16 warps and 78–122 registers a thread (sm_90)
# one fits per multiprocessor, so more only add waves and partial rows
CHUNKS_PER_SM = 1
COMBINE_BLOCK_N = 1024  # columns per program of the combine
# under Triton's CPU interpreter: pretend to have this many multiprocessors
INTERPRETER_MULTIPROCESSORS = 2


# ------------------------------------------------------------------ entry points


def forward(
    z: torch.Tensor, rows: torch.Tensor, R: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, s, lse, sum_single) of the logits z grouped by rows; see the module docstring."""
    _check_logits(z)
    _check_rows(rows, z)
    if isinstance(R, bool) or not isinstance(R, int) or R < 1:
        raise ValueError(f"R must be an int ≥ 1 (rows of S), got {R!r}")
    B, C = z.shape
    device = z.device
    S = _empty((R, C), dtype=torch.float32, device=device)
    s = _empty((C,), dtype=torch.float32, device=device)
    lse = _empty((B,), dtype=torch.float32, device=device)
    sum_single = _empty((), dtype=torch.float32, device=device)
    if B == 0:
        return S.zero_(), s.zero_(), lse, sum_single.zero_()
    sorted_rows, order = torch.sort(rows, stable=True)
    config = _forward_config(B, C, device)
    P = config.chunks
    n_single = P if config.column_blocks == 1 else B
    # partial rows (column sums, heads, tails) and the single examples' terms, one buffer
    partial = _empty((3 * P * C + n_single,), dtype=torch.float32, device=device)
    s_part, head, tail = partial[: 3 * P * C].view(3, P, C).unbind(0)
    single_part = partial[3 * P * C :]
    bounds = _empty((R + 1,), dtype=torch.int64, device=device)
    with _on_device(z):
        if config.column_blocks > 1:
            _mi_logsumexp[(B,)](
                z, rows, lse, single_part, C, z.stride(0), z.stride(1),
                BLOCK_C=config.block_c, num_warps=_warps(config.block_c),
            )  # fmt: skip
        _mi_fwd_chunks[(P, config.column_blocks)](
            z, sorted_rows, order, lse, S, s_part, head, tail, single_part, bounds,
            B, C, R, config.chunk, B.bit_length(), z.stride(0), z.stride(1),
            LSE_KNOWN=config.column_blocks > 1, BLOCK_R=config.block_r,
            BLOCK_C=config.block_c, BLOCK_BOUNDS=_pow2(triton.cdiv(R + 1, P)),
            num_warps=config.num_warps,
        )  # fmt: skip
        block_n = min(COMBINE_BLOCK_N, _pow2(C))
        _mi_fwd_combine[(R + 1, triton.cdiv(C, block_n))](
            S, s_part, head, tail, single_part, bounds, s, sum_single,
            C, R, config.chunk, P, n_single,
            BLOCK_P=min(_pow2(P), max(1, TILE_ELEMENTS // block_n)), BLOCK_N=block_n,
            BLOCK_S=min(1024, _pow2(n_single)), num_warps=4,
        )  # fmt: skip
    return S, s, lse, sum_single


def backward(
    z: torch.Tensor,
    rows: torch.Tensor,
    lse: torch.Tensor,
    Lam: torch.Tensor,
    ln_s: torch.Tensor,
    scale: torch.Tensor,
) -> torch.Tensor:
    """dz = scale · Q ∘ (G − Σ_c Q G) per example; see the module docstring."""
    _check_logits(z)
    _check_rows(rows, z)
    B, C = z.shape
    _check_float32(lse, "lse", (B,), z.device)
    if not isinstance(Lam, torch.Tensor) or Lam.dim() != 2 or Lam.shape[1] != C:
        got = tuple(Lam.shape) if isinstance(Lam, torch.Tensor) else type(Lam).__name__
        raise ValueError(f"Lam must be an (R, {C}) tensor, got {got}")
    _check_float32(Lam, "Lam", tuple(Lam.shape), z.device)
    _check_float32(ln_s, "ln_s", (C,), z.device)
    _check_float32(scale, "scale", (), z.device)
    R = Lam.shape[0]
    lse, Lam, ln_s = lse.contiguous(), Lam.contiguous(), ln_s.contiguous()
    dz = _empty((B, C), dtype=z.dtype, device=z.device)
    if B == 0:
        return dz
    block_c = _pow2(C)
    one_block = block_c <= MAX_ROW_BWD
    if not one_block:
        block_c = LOOPED_BLOCK_C
    block_r = min(_pow2(B), max(1, TILE_ELEMENTS // block_c))
    with _on_device(z):
        _mi_bwd[(triton.cdiv(B, block_r),)](
            z, rows, lse, Lam, ln_s, scale, dz, B, C, R,
            z.stride(0), z.stride(1), dz.stride(0), dz.stride(1),
            BLOCK_R=block_r, BLOCK_C=block_c, ONE_BLOCK=one_block,
            num_warps=_warps(block_r * block_c),
        )  # fmt: skip
    return dz


# ------------------------------------------------------------------ checks


def _check_logits(z: Any) -> None:
    if not isinstance(z, torch.Tensor) or z.dtype not in DTYPES:
        got = z.dtype if isinstance(z, torch.Tensor) else type(z).__name__
        raise TypeError(
            f"z must be a float32, bfloat16 or float16 tensor for the Triton kernels, got {got}"
        )
    if z.dim() != 2 or z.shape[1] == 0:
        raise ValueError(f"z must be (B, C) logits with C ≥ 1, got shape {tuple(z.shape)}")
    if not z.is_cuda and not _INTERPRETED:
        raise ValueError(
            f"z is on {z.device}: the Triton kernels run on CUDA tensors, or on CPU tensors "
            "under Triton's interpreter (TRITON_INTERPRET=1 set before importing infonorm.kernels)"
        )


def _check_rows(rows: Any, z: torch.Tensor) -> None:
    if not isinstance(rows, torch.Tensor) or rows.dtype != torch.int64:
        got = rows.dtype if isinstance(rows, torch.Tensor) else type(rows).__name__
        raise TypeError(f"rows must be an int64 tensor, got {got}")
    if rows.shape != (z.shape[0],):
        raise ValueError(f"rows must have shape ({z.shape[0]},), got {tuple(rows.shape)}")
    if rows.device != z.device:
        raise ValueError(f"rows is on {rows.device} but z is on {z.device}")
    if rows.stride(0) != 1 and rows.shape[0] > 1:
        raise ValueError("rows must be contiguous")


def _check_float32(t: Any, name: str, shape: tuple, device: torch.device) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float32:
        got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
        raise TypeError(f"{name} must be a float32 tensor, got {got}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device} but z is on {device}")


def _empty(shape, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Every output and scratch buffer comes from here (tests poison them with NaN)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _on_device(z: torch.Tensor):
    """z's device made current for the launches (a no-op where it already is)."""
    if not z.is_cuda or z.device.index == torch.cuda.current_device():
        return contextlib.nullcontext()
    return torch.cuda.device(z.device)


_INTERPRETED = type(_mi_bwd).__name__ == "InterpretedFunction"


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


def _warps(elements: int) -> int:
    """8 elements per thread, 1 to 16 warps."""
    return min(16, _pow2(elements // 256))


@dataclass(frozen=True)
class ForwardConfig:
    """Tiles of block_r examples × block_c columns; `column_blocks` per row (1: a row is one
    block, its softmax computed in the chunk pass; more: `_mi_logsumexp` first); the sorted
    examples cut into `chunks` chunks of `chunk` (a multiple of block_r)."""

    block_r: int
    block_c: int
    column_blocks: int
    chunk: int
    chunks: int
    num_warps: int


def _forward_config(B: int, C: int, device: torch.device) -> ForwardConfig:
    block_c = _pow2(C)
    if block_c > MAX_ROW_FWD:
        block_c = LOOPED_BLOCK_C
    column_blocks = triton.cdiv(C, block_c)
    # the per-row sums of a tile hold BLOCK_R² × BLOCK_C elements
    block_r = min(_pow2(B), max(1, TILE_ELEMENTS // block_c))
    while block_r > 1 and block_r * block_r * block_c > GROUP_ELEMENTS:
        block_r //= 2
    tiles = triton.cdiv(B, block_r)
    # CHUNKS_PER_SM programs per multiprocessor, counting column blocks
    programs = max(1, _multiprocessors(device) * CHUNKS_PER_SM // column_blocks)
    chunk = block_r * triton.cdiv(tiles, min(tiles, programs))
    elements = block_r * block_c
    num_warps = _warps(elements if block_r == 1 else block_r * elements)
    return ForwardConfig(block_r, block_c, column_blocks, chunk, triton.cdiv(B, chunk), num_warps)
