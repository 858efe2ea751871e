"""Triton kernels for layer norm whose statistics span more elements than one program holds.

x is seen as (R, T, I): R independent groups ("layers"), each normalized over its T·I
elements. scope="layer" is (R, T, I) itself; scope="position" with rows too long for
registers is (R, 1, I). Notation of `infonorm.layer_norm`: μ, rstd = 1/σ per layer;
h = (L − μ) rstd; z = A h + B; G = dy σ'(z); N = T·I.

Each layer is cut into C = CT·CI *units*: CHUNK_T consecutive rows t (CT = ⌈T/CHUNK_T⌉ of
them) times one block of BLOCK_I columns i (CI = ⌈I/BLOCK_I⌉), numbered layer-major,
u = (r·CT + ct)·CI + ci. A unit is walked in tiles of BLOCK_T × BLOCK_I.

Forward (two launches; see `infonorm.kernels.layer_norm`):
- `_layer_stats_partial`: one program per unit → (mean, M2) of its elements, the tiles
  merged by Chan et al.'s pairwise update (no Σx² − (Σx)² cancellation).
- `_layer_norm_fwd_split`: one program per unit, in *reverse* unit order so that the units
  the statistics pass read last (still in L2) are re-read first. Each program merges its
  layer's C partials (the same fixed order in every program, so all agree bit for bit),
  writes μ and rstd once (unit 0 of the layer), and writes y for its unit.

Backward (four launches):
- `_layer_bwd_sums_partial`: one program per unit → Σ G A and Σ G A h over the unit.
- `_layer_bwd_combine`: one program per layer → mean(G A) and mean(G A h) over the layer.
- `_layer_norm_bwd_dx_split`: a fixed grid of Q × CI programs; program (q, ci) walks the
  row blocks of column block ci (layer-major order reversed, again to re-read from L2
  first what the sums pass read last), prefetching the next block, writes dx and keeps
  float32 column sums of G h and G → one partial row of dA and dB per q.
- `_sum_partial_rows` (in `_layer_norm_position`): the deterministic sum of those rows.
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import triton
import triton.language as tl

from infonorm.kernels._activation import activation, activation_derivative


@triton.jit
def _unit_geometry(u, T, I, CT, CI, CHUNK_T, BLOCK_I: tl.constexpr):
    """Layer r, its rows [t_begin, t_end) and column offsets `cols` (with their mask) of unit u."""
    C = CT * CI
    r = u // C
    c = u % C
    ct = c // CI
    ci = c % CI
    t_begin = ct * CHUNK_T
    t_end = tl.minimum(t_begin + CHUNK_T, T)
    cols = ci * BLOCK_I + tl.arange(0, BLOCK_I)
    return r, t_begin, t_end, cols, cols < I


@triton.jit
def _layer_stats_partial(
    X,  # (R, T, I) input, strides (stride_xr, stride_xt, stride_xi)
    MEAN_PARTIAL,  # (R·C,) float32 out: mean of unit u's elements
    M2_PARTIAL,  # (R·C,) float32 out: Σ (L − mean_u)² over unit u
    T,
    I,
    CT,
    CI,
    CHUNK_T,
    stride_xr,
    stride_xt,
    stride_xi,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    u = tl.program_id(0)
    r, t_begin, t_end, cols, col_ok = _unit_geometry(u, T, I, CT, CI, CHUNK_T, BLOCK_I)
    n_cols = tl.sum(col_ok.to(tl.float32), axis=0)
    x_layer = X + r.to(tl.int64) * stride_xr
    n = tl.full([], 0.0, tl.float32)
    mean = tl.full([], 0.0, tl.float32)
    m2 = tl.full([], 0.0, tl.float32)
    for t0 in range(t_begin, t_end, BLOCK_T):
        rows = t0 + tl.arange(0, BLOCK_T)
        mask = (rows < t_end)[:, None] & col_ok[None, :]
        x = tl.load(
            x_layer + rows.to(tl.int64)[:, None] * stride_xt + cols[None, :] * stride_xi,
            mask=mask,
            other=0.0,
        ).to(tl.float32)
        # tile statistics: n_b elements, mean_b, M2_b = Σ (L − mean_b)²
        n_b = tl.minimum(t_end - t0, BLOCK_T).to(tl.float32) * n_cols
        mean_b = tl.sum(tl.sum(x, axis=1), axis=0) / n_b
        d = tl.where(mask, x - mean_b, 0.0)
        m2_b = tl.sum(tl.sum(d * d, axis=1), axis=0)
        # Chan et al.: (n, mean, M2) ⊕ (n_b, mean_b, M2_b) with δ = mean_b − mean:
        # mean += δ n_b/(n + n_b), M2 += M2_b + δ² n n_b/(n + n_b)
        n_new = n + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / n_new)
        m2 = m2 + m2_b + delta * delta * (n * (n_b / n_new))
        n = n_new
    tl.store(MEAN_PARTIAL + u, mean)
    tl.store(M2_PARTIAL + u, m2)


@triton.jit
def _layer_norm_fwd_split(
    X,  # (R, T, I) input, strides (stride_xr, stride_xt, stride_xi)
    Y,  # (R, T, I) out, strides (stride_yr, stride_yt, stride_yi); x's dtype
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN_PARTIAL,  # (R·C,) float32: per-unit means from `_layer_stats_partial`
    M2_PARTIAL,  # (R·C,) float32: per-unit M2 from `_layer_stats_partial`
    MEAN,  # (R,) float32 out: μ per layer
    RSTD,  # (R,) float32 out: 1/σ per layer
    T,
    I,
    CT,
    CI,
    CHUNK_T,
    n_units,
    stride_xr,
    stride_xt,
    stride_xi,
    stride_yr,
    stride_yt,
    stride_yi,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # reverse order: the units read last by the statistics pass come first
    u = n_units - 1 - tl.program_id(0)
    r, t_begin, t_end, cols, col_ok = _unit_geometry(u, T, I, CT, CI, CHUNK_T, BLOCK_I)
    C = CT * CI
    # merge the layer's C partials: with n_k elements in unit k,
    # μ = Σ_k n_k mean_k / N,  M2 = Σ_k M2_k + Σ_k n_k (mean_k − μ)²  (Chan et al.)
    k = tl.arange(0, BLOCK_C)
    k_ok = k < C
    first = r.to(tl.int64) * C
    mean_k = tl.load(MEAN_PARTIAL + first + k, mask=k_ok, other=0.0)
    m2_k = tl.load(M2_PARTIAL + first + k, mask=k_ok, other=0.0)
    rows_k = tl.minimum(T - (k // CI) * CHUNK_T, CHUNK_T)
    cols_k = tl.minimum(I - (k % CI) * BLOCK_I, BLOCK_I)
    n_k = tl.where(k_ok, rows_k.to(tl.float32) * cols_k.to(tl.float32), 0.0)
    N = tl.sum(n_k, axis=0)
    mu = tl.sum(n_k * mean_k, axis=0) / N
    dm = mean_k - mu
    m2 = tl.sum(m2_k, axis=0) + tl.sum(n_k * dm * dm, axis=0)
    # rstd = 1/sqrt(M2/N + eps)
    rstd = 1.0 / tl.sqrt(m2 / N + eps)
    first_unit = (u % C) == 0
    tl.store(MEAN + r, mu, mask=first_unit)
    tl.store(RSTD + r, rstd, mask=first_unit)
    a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    x_layer = X + r.to(tl.int64) * stride_xr
    y_layer = Y + r.to(tl.int64) * stride_yr
    for t0 in range(t_begin, t_end, BLOCK_T):
        rows = (t0 + tl.arange(0, BLOCK_T)).to(tl.int64)
        mask = (rows < t_end)[:, None] & col_ok[None, :]
        x = tl.load(
            x_layer + rows[:, None] * stride_xt + cols[None, :] * stride_xi, mask=mask, other=0.0
        ).to(tl.float32)
        # y = σ(A (L − μ) rstd + B)
        y = activation(a * ((x - mu) * rstd) + b, ACTIVATION)
        tl.store(y_layer + rows[:, None] * stride_yt + cols[None, :] * stride_yi, y, mask=mask)


@triton.jit
def _load_tile_pair(
    DY_LAYER,  # (T, I) one layer of dy, strides (stride_dyt, stride_dyi)
    X_LAYER,  # (T, I) the same layer of x, strides (stride_xt, stride_xi)
    t0,
    t_end,
    cols,
    col_ok,
    stride_dyt,
    stride_dyi,
    stride_xt,
    stride_xi,
    BLOCK_T: tl.constexpr,
):
    """dy and x (own dtypes) of rows t0 … t0 + BLOCK_T − 1 below t_end; zero elsewhere."""
    rows = (t0 + tl.arange(0, BLOCK_T)).to(tl.int64)
    mask = (rows < t_end)[:, None] & col_ok[None, :]
    dy = tl.load(
        DY_LAYER + rows[:, None] * stride_dyt + cols[None, :] * stride_dyi, mask=mask, other=0.0
    )
    x = tl.load(
        X_LAYER + rows[:, None] * stride_xt + cols[None, :] * stride_xi, mask=mask, other=0.0
    )
    return dy, x


@triton.jit
def _layer_bwd_sums_partial(
    DY,  # (R, T, I) upstream gradient, strides (stride_dyr, stride_dyt, stride_dyi)
    X,  # (R, T, I) the forward's input, strides (stride_xr, stride_xt, stride_xi)
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32: μ from the forward
    RSTD,  # (R,) float32: 1/σ from the forward
    SUM_GA_PARTIAL,  # (R·C,) float32 out: Σ G A over unit u
    SUM_GAH_PARTIAL,  # (R·C,) float32 out: Σ G A h over unit u
    T,
    I,
    CT,
    CI,
    CHUNK_T,
    stride_dyr,
    stride_dyt,
    stride_dyi,
    stride_xr,
    stride_xt,
    stride_xi,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
):
    u = tl.program_id(0)
    r, t_begin, t_end, cols, col_ok = _unit_geometry(u, T, I, CT, CI, CHUNK_T, BLOCK_I)
    mu = tl.load(MEAN + r)
    rstd = tl.load(RSTD + r)
    a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    dy_layer = DY + r.to(tl.int64) * stride_dyr
    x_layer = X + r.to(tl.int64) * stride_xr
    sum_GA = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    sum_GAh = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    # the next tile's loads are issued before this tile's arithmetic (nothing read past t_end)
    dy_n, x_n = _load_tile_pair(
        dy_layer, x_layer, t_begin, t_end, cols, col_ok,
        stride_dyt, stride_dyi, stride_xt, stride_xi, BLOCK_T,
    )  # fmt: skip
    for t0 in range(t_begin, t_end, BLOCK_T):
        dy = dy_n.to(tl.float32)
        x = x_n.to(tl.float32)
        dy_n, x_n = _load_tile_pair(
            dy_layer, x_layer, t0 + BLOCK_T, t_end, cols, col_ok,
            stride_dyt, stride_dyi, stride_xt, stride_xi, BLOCK_T,
        )  # fmt: skip
        # h = (L − μ) rstd, G = dy σ'(A h + B) (zero where dy was masked)
        h = (x - mu) * rstd
        GA = dy * activation_derivative(a * h + b, ACTIVATION) * a
        sum_GA += GA
        sum_GAh += GA * h
    tl.store(SUM_GA_PARTIAL + u, tl.sum(tl.sum(sum_GA, axis=1), axis=0))
    tl.store(SUM_GAH_PARTIAL + u, tl.sum(tl.sum(sum_GAh, axis=1), axis=0))


@triton.jit
def _layer_bwd_combine(
    SUM_GA_PARTIAL,  # (R·C,) float32: per-unit Σ G A
    SUM_GAH_PARTIAL,  # (R·C,) float32: per-unit Σ G A h
    MEAN_GA,  # (R,) float32 out: (1/N) Σ_{t,i} G A per layer
    MEAN_GAH,  # (R,) float32 out: (1/N) Σ_{t,i} G A h per layer
    C,
    N,
    BLOCK_C: tl.constexpr,
):
    r = tl.program_id(0)
    first = r.to(tl.int64) * C
    acc_GA = tl.zeros([BLOCK_C], dtype=tl.float32)
    acc_GAh = tl.zeros([BLOCK_C], dtype=tl.float32)
    for k0 in range(0, C, BLOCK_C):
        k = k0 + tl.arange(0, BLOCK_C)
        acc_GA += tl.load(SUM_GA_PARTIAL + first + k, mask=k < C, other=0.0)
        acc_GAh += tl.load(SUM_GAH_PARTIAL + first + k, mask=k < C, other=0.0)
    # mean(G A) = (1/N) Σ_{t,i} G A,  mean(G A h) = (1/N) Σ_{t,i} G A h
    tl.store(MEAN_GA + r, tl.sum(acc_GA, axis=0) / N)
    tl.store(MEAN_GAH + r, tl.sum(acc_GAh, axis=0) / N)


@triton.jit
def _load_row_block(
    DY,  # (R, T, I)
    X,  # (R, T, I)
    MEAN,  # (R,) float32
    RSTD,  # (R,) float32
    MEAN_GA,  # (R,) float32
    MEAN_GAH,  # (R,) float32
    v,
    T,
    TB,
    cols,
    col_ok,
    stride_dyr,
    stride_dyt,
    stride_dyi,
    stride_xr,
    stride_xt,
    stride_xi,
    BLOCK_T: tl.constexpr,
):
    """dy, x (own dtypes) of row block v = r·TB + tb (rows tb·BLOCK_T …) and the scalars of
    its layer r; everything zero (nothing read) for v < 0."""
    v = tl.cast(v, tl.int32)
    valid = v >= 0
    r = tl.where(valid, v // TB, 0)
    # no rows for v < 0: the block starts at row T
    rows = tl.where(valid, (v % TB) * BLOCK_T, T) + tl.arange(0, BLOCK_T)
    mask = (rows < T)[:, None] & col_ok[None, :]
    rows = rows.to(tl.int64)
    dy = tl.load(
        DY + r.to(tl.int64) * stride_dyr + rows[:, None] * stride_dyt + cols[None, :] * stride_dyi,
        mask=mask,
        other=0.0,
    )
    x = tl.load(
        X + r.to(tl.int64) * stride_xr + rows[:, None] * stride_xt + cols[None, :] * stride_xi,
        mask=mask,
        other=0.0,
    )
    mu = tl.load(MEAN + r, mask=valid, other=0.0)
    rstd = tl.load(RSTD + r, mask=valid, other=0.0)
    mean_GA = tl.load(MEAN_GA + r, mask=valid, other=0.0)
    mean_GAh = tl.load(MEAN_GAH + r, mask=valid, other=0.0)
    return dy, x, mu, rstd, mean_GA, mean_GAh


@triton.jit
def _layer_norm_bwd_dx_split(
    DY,  # (R, T, I) upstream gradient, strides (stride_dyr, stride_dyt, stride_dyi)
    X,  # (R, T, I) the forward's input, strides (stride_xr, stride_xt, stride_xi)
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32: μ
    RSTD,  # (R,) float32: 1/σ
    MEAN_GA,  # (R,) float32: mean(G A) per layer, from `_layer_bwd_combine`
    MEAN_GAH,  # (R,) float32: mean(G A h) per layer
    DX,  # (R, T, I) out, strides (stride_dxr, stride_dxt, stride_dxi); x's dtype
    DA_PARTIAL,  # (Q, I) float32 out, contiguous: Σ G h over program q's row blocks
    DB_PARTIAL,  # (Q, I) float32 out, contiguous: Σ G over program q's row blocks
    R,
    T,
    I,
    TB,
    stride_dyr,
    stride_dyt,
    stride_dyi,
    stride_xr,
    stride_xt,
    stride_xi,
    stride_dxr,
    stride_dxt,
    stride_dxi,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
    PREFETCH_TWO: tl.constexpr,
):
    q = tl.program_id(0)
    Q = tl.num_programs(0)
    cols = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    col_ok = cols < I
    a = tl.load(A + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    b = tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    dA_acc = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    # row blocks v = V − 1 − j for j = q, q + Q, …: the last layers' last rows first
    V = R * TB
    # the loads of the next block (PREFETCH_TWO: next two) are in flight while a block is
    # computed; blocks past the first (v < 0) read nothing
    dy_1, x_1, mu_1, rstd_1, mean_GA_1, mean_GAh_1 = _load_row_block(
        DY, X, MEAN, RSTD, MEAN_GA, MEAN_GAH, V - 1 - q, T, TB, cols, col_ok,
        stride_dyr, stride_dyt, stride_dyi, stride_xr, stride_xt, stride_xi, BLOCK_T,
    )  # fmt: skip
    if PREFETCH_TWO:
        dy_2, x_2, mu_2, rstd_2, mean_GA_2, mean_GAh_2 = _load_row_block(
            DY, X, MEAN, RSTD, MEAN_GA, MEAN_GAH, V - 1 - q - Q, T, TB, cols, col_ok,
            stride_dyr, stride_dyt, stride_dyi, stride_xr, stride_xt, stride_xi, BLOCK_T,
        )  # fmt: skip
    for j in range(q, V, Q):
        dy = dy_1.to(tl.float32)
        x = x_1.to(tl.float32)
        mu = mu_1
        rstd = rstd_1
        mean_GA = mean_GA_1
        mean_GAh = mean_GAh_1
        if PREFETCH_TWO:
            dy_1, x_1, mu_1, rstd_1, mean_GA_1, mean_GAh_1 = (
                dy_2, x_2, mu_2, rstd_2, mean_GA_2, mean_GAh_2
            )  # fmt: skip
            dy_2, x_2, mu_2, rstd_2, mean_GA_2, mean_GAh_2 = _load_row_block(
                DY, X, MEAN, RSTD, MEAN_GA, MEAN_GAH, V - 1 - j - 2 * Q, T, TB, cols, col_ok,
                stride_dyr, stride_dyt, stride_dyi, stride_xr, stride_xt, stride_xi, BLOCK_T,
            )  # fmt: skip
        else:
            dy_1, x_1, mu_1, rstd_1, mean_GA_1, mean_GAh_1 = _load_row_block(
                DY, X, MEAN, RSTD, MEAN_GA, MEAN_GAH, V - 1 - j - Q, T, TB, cols, col_ok,
                stride_dyr, stride_dyt, stride_dyi, stride_xr, stride_xt, stride_xi, BLOCK_T,
            )  # fmt: skip
        # h = (L − μ) rstd, G = dy σ'(A h + B)
        h = (x - mu) * rstd
        G = dy * activation_derivative(a * h + b, ACTIVATION)
        # dB[i] += Σ G, dA[i] += Σ G h
        dB_acc += G
        dA_acc += G * h
        # dx = rstd (G A − mean(G A) − h mean(G A h)), the means over the layer's N elements
        dx = rstd * (G * a - mean_GA - h * mean_GAh)
        v = V - 1 - j
        r = (v // TB).to(tl.int64)
        rows = (v % TB) * BLOCK_T + tl.arange(0, BLOCK_T)
        mask = (rows < T)[:, None] & col_ok[None, :]
        rows = rows.to(tl.int64)
        tl.store(
            DX + r * stride_dxr + rows[:, None] * stride_dxt + cols[None, :] * stride_dxi,
            dx,
            mask=mask,
        )
    out = q.to(tl.int64) * I + cols
    tl.store(DA_PARTIAL + out, tl.sum(dA_acc, axis=0), mask=col_ok)
    tl.store(DB_PARTIAL + out, tl.sum(dB_acc, axis=0), mask=col_ok)
