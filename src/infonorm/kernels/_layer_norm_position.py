"""Triton kernels for layer norm with statistics per row, the row held in registers.

Used for scope="position" when a row fits in registers (I up to a few thousand); longer
rows go through the split kernels of `_layer_norm_split`. Notation of `infonorm.layer_norm`:
a row L[i], i < I, of one position; μ and rstd = 1/σ its statistics; h = (L − μ) rstd;
z = A h + B; y = σ(z); G = dy σ'(z).

- `_layer_norm_fwd`: one pass over x. Each program normalizes BLOCK_R rows; μ and the
  variance are computed from the registers (mean first, then the mean of (L − μ)², exact
  two-pass arithmetic on one read of memory).
- `_layer_norm_bwd`: one pass over x and dy. A fixed number P of programs each walk rows
  tile by tile (the next tile's loads issued before the current tile's arithmetic), write
  dx, and keep per-column float32 sums of G h and G that end as one partial row of dA and
  dB per program.
- `_sum_partial_rows`: dA[i] = Σ_p partial[p, i] in a fixed order (deterministic, no
  atomics); shared with the split path.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import triton
import triton.language as tl

from infonorm.kernels._activation import activation, activation_derivative


@triton.jit
def _layer_norm_fwd(
    X,  # (R, I) input rows, strides (stride_xr, stride_xi); float32, bfloat16 or float16
    Y,  # (R, I) output rows, strides (stride_yr, stride_yi); x's dtype
    A,  # (I,) contiguous: per-feature scale
    B,  # (I,) contiguous: per-feature shift
    MEAN,  # (R,) float32 out: μ of each row
    RSTD,  # (R,) float32 out: 1/σ of each row
    R,
    I,
    stride_xr,
    stride_xi,
    stride_yr,
    stride_yi,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_I)
    row_ok = rows < R
    col_ok = cols < I
    mask = row_ok[:, None] & col_ok[None, :]
    rows64 = rows.to(tl.int64)
    x = tl.load(
        X + rows64[:, None] * stride_xr + cols[None, :] * stride_xi, mask=mask, other=0.0
    ).to(tl.float32)
    a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)
    b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
    # μ = (1/I) Σ_i L[i]
    mu = tl.sum(x, axis=1) / I
    # σ² = (1/I) Σ_i (L[i] − μ)², from the registers (no second read of memory)
    d = tl.where(mask, x - mu[:, None], 0.0)
    var = tl.sum(d * d, axis=1) / I
    # rstd = 1/sqrt(σ² + eps) (1 for rows past R, which are never stored)
    rstd = 1.0 / tl.sqrt(tl.where(row_ok, var + eps, 1.0))
    # y = σ(A h + B), h = (L − μ) rstd
    z = a[None, :] * (d * rstd[:, None]) + b[None, :]
    y = activation(z, ACTIVATION)
    tl.store(Y + rows64[:, None] * stride_yr + cols[None, :] * stride_yi, y, mask=mask)
    tl.store(MEAN + rows, mu, mask=row_ok)
    tl.store(RSTD + rows, rstd, mask=row_ok)


@triton.jit
def _load_row_tile(
    DY,  # (R, I) upstream gradient
    X,  # (R, I) input
    MEAN,  # (R,) float32
    RSTD,  # (R,) float32
    tile,
    R,
    I,
    stride_dyr,
    stride_dyi,
    stride_xr,
    stride_xi,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    """dy, x (their own dtypes), μ and rstd of row tile `tile`; all zero past the last row."""
    rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_I)
    row_ok = rows < R
    mask = row_ok[:, None] & (cols < I)[None, :]
    rows64 = rows.to(tl.int64)
    dy_offsets = rows64[:, None] * stride_dyr + cols[None, :] * stride_dyi
    dy = tl.load(DY + dy_offsets, mask=mask, other=0.0)
    x = tl.load(X + rows64[:, None] * stride_xr + cols[None, :] * stride_xi, mask=mask, other=0.0)
    mu = tl.load(MEAN + rows, mask=row_ok, other=0.0)
    rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0)
    return dy, x, mu, rstd


@triton.jit
def _layer_norm_bwd(
    DY,  # (R, I) upstream gradient ∂loss/∂y, strides (stride_dyr, stride_dyi)
    X,  # (R, I) the forward's input, strides (stride_xr, stride_xi)
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32: μ from the forward
    RSTD,  # (R,) float32: 1/σ from the forward
    DX,  # (R, I) out, strides (stride_dxr, stride_dxi); x's dtype
    DA_PARTIAL,  # (P, I) float32 out, contiguous: Σ G h over this program's rows
    DB_PARTIAL,  # (P, I) float32 out, contiguous: Σ G over this program's rows
    R,
    I,
    stride_dyr,
    stride_dyi,
    stride_xr,
    stride_xi,
    stride_dxr,
    stride_dxi,
    ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
    PREFETCH_TWO: tl.constexpr,
    AB_IN_REGISTERS: tl.constexpr,
):
    pid = tl.program_id(0)
    P = tl.num_programs(0)
    cols = tl.arange(0, BLOCK_I)
    col_ok = cols < I
    if AB_IN_REGISTERS:
        a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    dA_acc = tl.zeros([BLOCK_R, BLOCK_I], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_R, BLOCK_I], dtype=tl.float32)
    n_tiles = tl.cdiv(R, BLOCK_R)
    # tiles pid, pid + P, pid + 2P, …: all programs sweep memory together. The loads of the
    # next one (PREFETCH_TWO: next two) tiles are in flight while a tile is computed; they
    # are masked off past the last row.
    dy_1, x_1, mu_1, rstd_1 = _load_row_tile(
        DY, X, MEAN, RSTD, pid, R, I,
        stride_dyr, stride_dyi, stride_xr, stride_xi, BLOCK_R, BLOCK_I,
    )  # fmt: skip
    if PREFETCH_TWO:
        dy_2, x_2, mu_2, rstd_2 = _load_row_tile(
            DY, X, MEAN, RSTD, pid + P, R, I,
            stride_dyr, stride_dyi, stride_xr, stride_xi, BLOCK_R, BLOCK_I,
        )  # fmt: skip
    for tile in range(pid, n_tiles, P):
        dy = dy_1.to(tl.float32)
        x = x_1.to(tl.float32)
        mu = mu_1[:, None]
        rstd = rstd_1[:, None]
        if PREFETCH_TWO:
            dy_1, x_1, mu_1, rstd_1 = dy_2, x_2, mu_2, rstd_2
            dy_2, x_2, mu_2, rstd_2 = _load_row_tile(
                DY, X, MEAN, RSTD, tile + 2 * P, R, I,
                stride_dyr, stride_dyi, stride_xr, stride_xi, BLOCK_R, BLOCK_I,
            )  # fmt: skip
        else:
            dy_1, x_1, mu_1, rstd_1 = _load_row_tile(
                DY, X, MEAN, RSTD, tile + P, R, I,
                stride_dyr, stride_dyi, stride_xr, stride_xi, BLOCK_R, BLOCK_I,
            )  # fmt: skip
        if not AB_IN_REGISTERS:
            # A and B again from L1 rather than held in registers all along
            a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        # h = (L − μ) rstd; z = A h + B
        h = (x - mu) * rstd
        z = a * h + b
        # G = dy σ'(z); zero wherever dy was masked to zero
        G = dy * activation_derivative(z, ACTIVATION)
        # dB[i] += Σ G, dA[i] += Σ G h (over this program's rows)
        dB_acc += G
        dA_acc += G * h
        # dx = rstd (G A − mean_i(G A) − h mean_i(G A h)), means over the row's I elements
        GA = G * a
        mean_GA = tl.sum(GA, axis=1) / I
        mean_GAh = tl.sum(GA * h, axis=1) / I
        dx = rstd * (GA - mean_GA[:, None] - h * mean_GAh[:, None])
        rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
        mask = (rows < R)[:, None] & col_ok[None, :]
        rows64 = rows.to(tl.int64)
        tl.store(DX + rows64[:, None] * stride_dxr + cols[None, :] * stride_dxi, dx, mask=mask)
    out = pid.to(tl.int64) * I + cols
    tl.store(DA_PARTIAL + out, tl.sum(dA_acc, axis=0), mask=col_ok)
    tl.store(DB_PARTIAL + out, tl.sum(dB_acc, axis=0), mask=col_ok)


@triton.jit
def _sum_partial_rows(
    DA_PARTIAL,  # (P, I) float32, contiguous
    DB_PARTIAL,  # (P, I) float32, contiguous
    DA,  # (I,) out, A's dtype
    DB,  # (I,) out, B's dtype
    P,
    I,
    BLOCK_P: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # dA[i] = Σ_p DA_PARTIAL[p, i], dB[i] = Σ_p DB_PARTIAL[p, i]: each program owns BLOCK_N
    # columns and adds the P rows in a fixed order, so the result is the same every run
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < I
    dA_acc = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
    for p0 in range(0, P, BLOCK_P):
        rows = p0 + tl.arange(0, BLOCK_P)
        mask = (rows < P)[:, None] & col_ok[None, :]
        offsets = rows.to(tl.int64)[:, None] * I + cols[None, :]
        dA_acc += tl.load(DA_PARTIAL + offsets, mask=mask, other=0.0)
        dB_acc += tl.load(DB_PARTIAL + offsets, mask=mask, other=0.0)
    tl.store(DA + cols, tl.sum(dA_acc, axis=0), mask=col_ok)
    tl.store(DB + cols, tl.sum(dB_acc, axis=0), mask=col_ok)


@triton.jit
def _layer_norm_fwd_looped(
    X,  # (R, I) input rows, strides (stride_xr, stride_xi)
    Y,  # (R, I) output rows, strides (stride_yr, stride_yi); x's dtype
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32 out
    RSTD,  # (R,) float32 out
    I,
    stride_xr,
    stride_xi,
    stride_yr,
    stride_yi,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    """One row per program for rows too long for registers: a statistics loop over the row in
    blocks of BLOCK_I, then a normalizing loop that re-reads the row (from L2: the same
    program read it a moment ago)."""
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_xr
    y_row = Y + row * stride_yr
    offsets = tl.arange(0, BLOCK_I)
    n = tl.full([], 0.0, tl.float32)
    mu = tl.full([], 0.0, tl.float32)
    m2 = tl.full([], 0.0, tl.float32)
    for i0 in range(0, I, BLOCK_I):
        cols = i0 + offsets
        col_ok = cols < I
        x = tl.load(x_row + cols * stride_xi, mask=col_ok, other=0.0).to(tl.float32)
        # block statistics: n_b elements, mean_b, M2_b = Σ (L − mean_b)²
        n_b = tl.minimum(I - i0, BLOCK_I).to(tl.float32)
        mean_b = tl.sum(x, axis=0) / n_b
        d = tl.where(col_ok, x - mean_b, 0.0)
        m2_b = tl.sum(d * d, axis=0)
        # Chan et al.: (n, μ, M2) ⊕ (n_b, mean_b, M2_b) with δ = mean_b − μ:
        # μ += δ n_b/(n + n_b), M2 += M2_b + δ² n n_b/(n + n_b)
        n_new = n + n_b
        delta = mean_b - mu
        mu = mu + delta * (n_b / n_new)
        m2 = m2 + m2_b + delta * delta * (n * (n_b / n_new))
        n = n_new
    # rstd = 1/sqrt(M2/I + eps)
    rstd = 1.0 / tl.sqrt(m2 / n + eps)
    tl.store(MEAN + row, mu)
    tl.store(RSTD + row, rstd)
    for i0 in range(0, I, BLOCK_I):
        cols = i0 + offsets
        col_ok = cols < I
        x = tl.load(x_row + cols * stride_xi, mask=col_ok, other=0.0).to(tl.float32)
        a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)
        b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
        # y = σ(A (L − μ) rstd + B)
        y = activation(a * ((x - mu) * rstd) + b, ACTIVATION)
        tl.store(y_row + cols * stride_yi, y, mask=col_ok)
