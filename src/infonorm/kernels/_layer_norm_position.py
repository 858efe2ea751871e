"""Triton kernels for layer norm with statistics per row, the row held in registers.

Used for scope="position" when a row fits in registers (I up to a few thousand); longer
rows go through the split kernels of `_layer_norm_split`. Notation of `infonorm.layer_norm`:
a row L[i], i < I, of one position; μ and rstd = 1/σ its statistics; h = (L − μ) rstd;
z = A h + B; y = act(z); G = dy act'(z).

- `_layer_norm_fwd`: one pass over x. A program normalizes tiles of BLOCK_R rows; μ and the
  variance come from the registers (mean first, then the mean of (L − μ)²: exact two-pass
  arithmetic on one read of memory). One tile per program, or (AHEAD > 0) a fixed number of
  programs walking the tiles with the next tiles' loads in flight.
- `_layer_norm_bwd`: one pass over x and dy. A fixed number P of programs each walk row
  tiles, the next tiles' loads in flight while one is computed, write dx, and keep
  per-column float32 sums of G h and G that end as one partial row of dA and dB each.
- `_sum_partial_rows`: dA[i] = Σ_p partial[p, i] in a fixed order (deterministic, no
  atomics); shared with the split path.
- `_layer_norm_fwd_looped`: rows too long for registers, one per program.

Statistics helpers shared with the split kernels: `_moments` (mean and M2 of a tile) and
`_chan_merge` (two such summaries into one).

Persistent loops put their loads ahead in one of two ways (PIPELINE, a compile-time choice):
"hand", the kernel issues the loads of the next AHEAD tiles itself and rotates them through
registers; "compiler", `tl.range(..., num_stages=AHEAD + 1)` lets Triton's software
pipeliner stage them through shared memory. The arithmetic is the same.

Pointers to 2-D data come with a (row, column) stride pair, e.g. x_strides for X.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import triton
import triton.language as tl

from infonorm.kernels._activation import activation, activation_derivative

# ---------------------------------------------------------------------------- helpers


@triton.jit
def _offsets(rows, cols, strides):
    """Offsets of the elements (rows × cols) of a matrix with (row, column) `strides`."""
    return rows.to(tl.int64)[:, None] * strides[0] + cols[None, :] * strides[1]


@triton.jit
def _moments(x, mask, n):
    """(mean, M2) of the n elements of x where mask holds (zeros elsewhere):
    mean = Σ x / n, M2 = Σ (x − mean)²."""
    mean = tl.sum(x) / n
    d = tl.where(mask, x - mean, 0.0)
    return mean, tl.sum(d * d)


@triton.jit
def _chan_merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """(n, mean, M2) of the union of two sets from theirs (Chan et al.; either may be empty):
    with δ = mean_b − mean_a and n = n_a + n_b,
    mean = mean_a + δ n_b/n,  M2 = M2_a + M2_b + δ² n_a n_b/n."""
    n = n_a + n_b
    w_b = n_b / tl.maximum(n, 1.0)  # n_b/n; 0 when both are empty (counts are whole numbers)
    delta = mean_b - mean_a
    return n, mean_a + delta * w_b, m2_a + m2_b + delta * delta * (n_a * w_b)


@triton.jit
def _load_ab(A, B, cols, col_ok):
    """A and B at `cols` in float32, as (1, BLOCK_I) rows."""
    a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    return a, b


# ---------------------------------------------------------------------------- forward


@triton.jit
def _load_rows(X, tile, R, I, x_strides, BLOCK_R: tl.constexpr, BLOCK_I: tl.constexpr):
    """Row tile `tile` of x in its own dtype; zeros past the last row or column."""
    rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_I)
    mask = (rows < R)[:, None] & (cols < I)[None, :]
    return tl.load(X + _offsets(rows, cols, x_strides), mask=mask, other=0.0)


@triton.jit
def _normalize_rows(
    x,  # (BLOCK_R, BLOCK_I) the tile's input, any float dtype
    tile,
    a,  # (1, BLOCK_I) float32
    b,  # (1, BLOCK_I) float32
    Y,  # (R, I) out
    MEAN,  # (R,) float32 out
    RSTD,  # (R,) float32 out
    R,
    I,
    y_strides,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_I)
    row_ok = rows < R
    mask = row_ok[:, None] & (cols < I)[None, :]
    x = x.to(tl.float32)
    # μ = (1/I) Σ_i L[i]
    mu = tl.sum(x, axis=1) / I
    # var = (1/I) Σ_i (L[i] − μ)², from the registers (no second read of memory)
    d = tl.where(mask, x - mu[:, None], 0.0)
    var = tl.sum(d * d, axis=1) / I
    # rstd = 1/sqrt(var + eps) (1 for rows past R, which are never stored)
    rstd = 1.0 / tl.sqrt(tl.where(row_ok, var + eps, 1.0))
    # y = act(A h + B), h = (L − μ) rstd
    y = activation(a * (d * rstd[:, None]) + b, ACTIVATION)
    tl.store(Y + _offsets(rows, cols, y_strides), y, mask=mask)
    tl.store(MEAN + rows, mu, mask=row_ok)
    tl.store(RSTD + rows, rstd, mask=row_ok)


@triton.jit
def _layer_norm_fwd(
    X,  # (R, I) input rows, strides x_strides; float32, bfloat16 or float16
    Y,  # (R, I) out, strides y_strides; x's dtype
    A,  # (I,) contiguous: per-feature scale
    B,  # (I,) contiguous: per-feature shift
    MEAN,  # (R,) float32 out: μ of each row
    RSTD,  # (R,) float32 out: 1/σ of each row
    R,
    I,
    x_strides,
    y_strides,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr,  # rows per tile
    BLOCK_I: tl.constexpr,  # columns per tile, ≥ I
    AHEAD: tl.constexpr,  # tiles in flight ahead of the one normalized; 0: one tile per program
    PIPELINE: tl.constexpr,  # "hand" or "compiler"
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_I)
    a, b = _load_ab(A, B, cols, cols < I)
    if AHEAD == 0:
        x = _load_rows(X, pid, R, I, x_strides, BLOCK_R, BLOCK_I)
        _normalize_rows(
            x, pid, a, b, Y, MEAN, RSTD, R, I, y_strides, eps, ACTIVATION, BLOCK_R, BLOCK_I
        )
    elif PIPELINE == "compiler":
        for tile in tl.range(pid, tl.cdiv(R, BLOCK_R), tl.num_programs(0), num_stages=AHEAD + 1):
            x = _load_rows(X, tile, R, I, x_strides, BLOCK_R, BLOCK_I)
            _normalize_rows(
                x, tile, a, b, Y, MEAN, RSTD, R, I, y_strides, eps, ACTIVATION, BLOCK_R, BLOCK_I
            )
    else:
        # tiles pid, pid + P, …; the loads of the next AHEAD (1 or 2) are issued before a
        # tile's arithmetic, masked off past the last row
        P = tl.num_programs(0)
        next_1 = _load_rows(X, pid, R, I, x_strides, BLOCK_R, BLOCK_I)
        if AHEAD == 2:
            next_2 = _load_rows(X, pid + P, R, I, x_strides, BLOCK_R, BLOCK_I)
        for tile in range(pid, tl.cdiv(R, BLOCK_R), P):
            x = next_1
            if AHEAD == 2:
                next_1 = next_2
                next_2 = _load_rows(X, tile + 2 * P, R, I, x_strides, BLOCK_R, BLOCK_I)
            else:
                next_1 = _load_rows(X, tile + P, R, I, x_strides, BLOCK_R, BLOCK_I)
            _normalize_rows(
                x, tile, a, b, Y, MEAN, RSTD, R, I, y_strides, eps, ACTIVATION, BLOCK_R, BLOCK_I
            )


@triton.jit
def _layer_norm_fwd_looped(
    X,  # (R, I) input rows, strides x_strides
    Y,  # (R, I) out, strides y_strides; x's dtype
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32 out
    RSTD,  # (R,) float32 out
    I,
    x_strides,
    y_strides,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    """One row per program for rows too long for registers: a statistics loop over the row in
    blocks of BLOCK_I, then a normalizing loop that re-reads the row (from L2: the same
    program read it a moment ago)."""
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * x_strides[0]
    y_row = Y + row * y_strides[0]
    offsets = tl.arange(0, BLOCK_I)
    n = tl.full([], 0.0, tl.float32)
    mu = tl.full([], 0.0, tl.float32)
    m2 = tl.full([], 0.0, tl.float32)
    for i0 in range(0, I, BLOCK_I):
        cols = i0 + offsets
        col_ok = cols < I
        x = tl.load(x_row + cols * x_strides[1], mask=col_ok, other=0.0).to(tl.float32)
        n_b = tl.minimum(I - i0, BLOCK_I).to(tl.float32)
        mean_b, m2_b = _moments(x, col_ok, n_b)
        n, mu, m2 = _chan_merge(n, mu, m2, n_b, mean_b, m2_b)
    # rstd = 1/sqrt(M2/I + eps)
    rstd = 1.0 / tl.sqrt(m2 / n + eps)
    tl.store(MEAN + row, mu)
    tl.store(RSTD + row, rstd)
    for i0 in range(0, I, BLOCK_I):
        cols = i0 + offsets
        col_ok = cols < I
        x = tl.load(x_row + cols * x_strides[1], mask=col_ok, other=0.0).to(tl.float32)
        a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)
        b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)
        # y = act(A (L − μ) rstd + B)
        y = activation(a * ((x - mu) * rstd) + b, ACTIVATION)
        tl.store(y_row + cols * y_strides[1], y, mask=col_ok)


# ---------------------------------------------------------------------------- backward


@triton.jit
def _load_row_tile(
    DY,  # (R, I) upstream gradient
    X,  # (R, I) input
    MEAN,  # (R,) float32
    RSTD,  # (R,) float32
    tile,
    R,
    I,
    dy_strides,
    x_strides,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    """(dy, x, μ, rstd) of row tile `tile`, dy and x in their own dtypes; zeros past the
    last row."""
    rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_I)
    row_ok = rows < R
    mask = row_ok[:, None] & (cols < I)[None, :]
    dy = tl.load(DY + _offsets(rows, cols, dy_strides), mask=mask, other=0.0)
    x = tl.load(X + _offsets(rows, cols, x_strides), mask=mask, other=0.0)
    mu = tl.load(MEAN + rows, mask=row_ok, other=0.0)
    rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0)
    return dy, x, mu, rstd


@triton.jit
def _row_tile_backward(
    loaded,  # (dy, x, μ, rstd) of the tile, from `_load_row_tile`
    tile,
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    ab,  # (a, b) as (1, BLOCK_I) float32 rows, or None: reload A and B
    DX,  # (R, I) out
    dA_acc,  # (BLOCK_R, BLOCK_I) float32 running Σ G h
    dB_acc,  # (BLOCK_R, BLOCK_I) float32 running Σ G
    R,
    I,
    dx_strides,
    ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    """Writes dx of one row tile; returns the accumulators with its G h and G added."""
    dy, x, mu, rstd = loaded
    rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_I)
    col_ok = cols < I
    if ab is None:
        # A and B again from L1 rather than held in registers all along
        a, b = _load_ab(A, B, cols, col_ok)
    else:
        a, b = ab
    # h = (L − μ) rstd; z = A h + B
    h = (x.to(tl.float32) - mu[:, None]) * rstd[:, None]
    # G = dy act'(z); zero wherever dy was masked to zero
    G = dy.to(tl.float32) * activation_derivative(a * h + b, ACTIVATION)
    # dB[i] += Σ G, dA[i] += Σ G h (over this program's rows)
    dA_acc += G * h
    dB_acc += G
    # dx = rstd (G A − mean_i(G A) − h mean_i(G A h)), means over the row's I elements
    GA = G * a
    mean_GA = tl.sum(GA, axis=1) / I
    mean_GAh = tl.sum(GA * h, axis=1) / I
    dx = rstd[:, None] * (GA - mean_GA[:, None] - h * mean_GAh[:, None])
    mask = (rows < R)[:, None] & col_ok[None, :]
    tl.store(DX + _offsets(rows, cols, dx_strides), dx, mask=mask)
    return dA_acc, dB_acc


@triton.jit
def _layer_norm_bwd(
    DY,  # (R, I) upstream gradient ∂loss/∂y, strides dy_strides
    X,  # (R, I) the forward's input, strides x_strides
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32: μ from the forward
    RSTD,  # (R,) float32: 1/σ from the forward
    DX,  # (R, I) out, strides dx_strides; x's dtype
    DA_PARTIAL,  # (P, I) out, contiguous: Σ G h over program p's rows (dA itself when P = 1)
    DB_PARTIAL,  # (P, I) out, contiguous: Σ G over program p's rows (dB itself when P = 1)
    R,
    I,
    dy_strides,
    x_strides,
    dx_strides,
    ACTIVATION: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_I: tl.constexpr,
    AHEAD: tl.constexpr,  # tiles whose loads are in flight while one is computed: 1 or 2
    PIPELINE: tl.constexpr,  # "hand" or "compiler"
    AB_IN_REGISTERS: tl.constexpr,
):
    pid = tl.program_id(0)
    P = tl.num_programs(0)
    cols = tl.arange(0, BLOCK_I)
    ab = None
    if AB_IN_REGISTERS:
        ab = _load_ab(A, B, cols, cols < I)
    dA_acc = tl.zeros([BLOCK_R, BLOCK_I], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_R, BLOCK_I], dtype=tl.float32)
    n_tiles = tl.cdiv(R, BLOCK_R)
    # tiles pid, pid + P, pid + 2P, …: all programs sweep memory together
    if PIPELINE == "compiler":
        for tile in tl.range(pid, n_tiles, P, num_stages=AHEAD + 1):
            loaded = _load_row_tile(
                DY, X, MEAN, RSTD, tile, R, I, dy_strides, x_strides, BLOCK_R, BLOCK_I
            )
            dA_acc, dB_acc = _row_tile_backward(
                loaded, tile, A, B, ab, DX, dA_acc, dB_acc, R, I, dx_strides,
                ACTIVATION, BLOCK_R, BLOCK_I,
            )  # fmt: skip
    else:
        # the loads of the next AHEAD tiles are issued before a tile's arithmetic (masked off
        # past the last row)
        next_1 = _load_row_tile(
            DY, X, MEAN, RSTD, pid, R, I, dy_strides, x_strides, BLOCK_R, BLOCK_I
        )
        if AHEAD == 2:
            next_2 = _load_row_tile(
                DY, X, MEAN, RSTD, pid + P, R, I, dy_strides, x_strides, BLOCK_R, BLOCK_I
            )
        for tile in range(pid, n_tiles, P):
            loaded = next_1
            if AHEAD == 2:
                next_1 = next_2
                next_2 = _load_row_tile(
                    DY, X, MEAN, RSTD, tile + 2 * P, R, I, dy_strides, x_strides,
                    BLOCK_R, BLOCK_I,
                )  # fmt: skip
            else:
                next_1 = _load_row_tile(
                    DY, X, MEAN, RSTD, tile + P, R, I, dy_strides, x_strides, BLOCK_R, BLOCK_I
                )
            dA_acc, dB_acc = _row_tile_backward(
                loaded, tile, A, B, ab, DX, dA_acc, dB_acc, R, I, dx_strides,
                ACTIVATION, BLOCK_R, BLOCK_I,
            )  # fmt: skip
    out = pid.to(tl.int64) * I + cols
    tl.store(DA_PARTIAL + out, tl.sum(dA_acc, axis=0), mask=cols < I)
    tl.store(DB_PARTIAL + out, tl.sum(dB_acc, axis=0), mask=cols < I)


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
