"""Triton kernels for layer norm whose statistics span more elements than one program holds.

x is seen as (R, T, I): R independent groups ("layers"), each normalized over its T·I
elements. scope="layer" is (R, T, I) itself; scope="position" with rows too long for
registers is (R, 1, I). Notation of `infonorm.layer_norm`: μ, rstd = 1/σ per layer;
h = (L − μ) rstd; z = A h + B; G = dy act'(z); N = T·I.

Each layer is cut into C = CT·CI *units*: CHUNK_T consecutive rows t (CT = ⌈T/CHUNK_T⌉ of
them) times one block of BLOCK_I columns i (CI = ⌈I/BLOCK_I⌉), numbered layer-major,
u = (r·CT + ct)·CI + ci; the kernels get `units` = (CT, CI, CHUNK_T). A unit is walked in
tiles of BLOCK_T × BLOCK_I. Pointers to (R, T, I) data come with a (layer, row, column)
stride triple, e.g. x_strides for X.

Forward (two launches; see `infonorm.kernels.layer_norm`):
- `_layer_stats_partial`: one program per unit → (mean, M2) of its elements, the tiles
  merged by Chan et al.'s pairwise update (`_chan_merge`: no Σx² − (Σx)² cancellation).
- `_layer_norm_fwd_split`: one program per unit, in *reverse* unit order so that the units
  the statistics pass read last (still in L2) are re-read first. Each program merges its
  layer's C partials with the same `_chan_merge` as a reduction (the same fixed tree in
  every program, so all agree bit for bit), writes μ and rstd once (unit 0 of the layer),
  and writes y for its unit.

Backward (four launches):
- `_layer_bwd_sums_partial`: one program per unit → Σ G A and Σ G A h over the unit.
- `_layer_bwd_combine`: one program per layer → mean(G A) and mean(G A h) over the layer.
- `_layer_norm_bwd_dx_split`: a fixed grid of Q × CI programs; program (q, ci) walks the
  row blocks of column block ci (layer-major order reversed, again to re-read from L2
  first what the sums pass read last), the next blocks' loads in flight, writes dx and
  keeps float32 column sums of G h and G → one partial row of dA and dB per q.
- `_sum_partial_rows` (in `_layer_norm_position`): the deterministic sum of those rows.

The persistent loops put their loads ahead by hand or through Triton's pipeliner (PIPELINE,
as in `_layer_norm_position`); the passes over a unit pipeline in STAGES stages (1: none).
"""

# I is the quiz's name for the number of neurons per position (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import triton
import triton.language as tl

from infonorm.kernels._activation import activation, activation_derivative
from infonorm.kernels._layer_norm_position import _chan_merge, _load_ab, _moments, _offsets


@triton.jit
def _unit_geometry(u, T, I, units, BLOCK_I: tl.constexpr):
    """Layer r, its rows [t_begin, t_end) and column offsets `cols` (with their mask) of unit u,
    units = (CT, CI, CHUNK_T)."""
    CT, CI, CHUNK_T = units
    C = CT * CI
    r = u // C
    c = u % C
    t_begin = (c // CI) * CHUNK_T
    t_end = tl.minimum(t_begin + CHUNK_T, T)
    cols = (c % CI) * BLOCK_I + tl.arange(0, BLOCK_I)
    return r, t_begin, t_end, cols, cols < I


@triton.jit
def _in_layer(strides):
    """The (row, column) strides inside one layer of a (layer, row, column) triple."""
    return strides[1], strides[2]


# ---------------------------------------------------------------------------- forward


@triton.jit
def _layer_stats_partial(
    X,  # (R, T, I) input, strides x_strides
    PARTIAL,  # (2, R·C) float32 out, contiguous: [0, u] mean of unit u, [1, u] its M2
    T,
    I,
    units,
    x_strides,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
    STAGES: tl.constexpr,  # software-pipelining stages of the loop over the unit's tiles
):
    u = tl.program_id(0)
    r, t_begin, t_end, cols, col_ok = _unit_geometry(u, T, I, units, BLOCK_I)
    n_cols = tl.sum(col_ok.to(tl.float32), axis=0)
    x_layer = X + r.to(tl.int64) * x_strides[0]
    n = tl.full([], 0.0, tl.float32)
    mean = tl.full([], 0.0, tl.float32)
    m2 = tl.full([], 0.0, tl.float32)
    for t0 in tl.range(t_begin, t_end, BLOCK_T, num_stages=STAGES):
        rows = t0 + tl.arange(0, BLOCK_T)
        mask = (rows < t_end)[:, None] & col_ok[None, :]
        offsets = _offsets(rows, cols, _in_layer(x_strides))
        x = tl.load(x_layer + offsets, mask=mask, other=0.0).to(tl.float32)
        n_b = tl.minimum(t_end - t0, BLOCK_T).to(tl.float32) * n_cols
        mean_b, m2_b = _moments(x, mask, n_b)
        n, mean, m2 = _chan_merge(n, mean, m2, n_b, mean_b, m2_b)
    tl.store(PARTIAL + u, mean)
    tl.store(PARTIAL + tl.num_programs(0) + u, m2)


@triton.jit
def _layer_norm_fwd_split(
    X,  # (R, T, I) input, strides x_strides
    Y,  # (R, T, I) out, strides y_strides; x's dtype
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    PARTIAL,  # (2, R·C) float32 from `_layer_stats_partial`: per-unit means and M2
    MEAN,  # (R,) float32 out: μ per layer
    RSTD,  # (R,) float32 out: 1/σ per layer
    T,
    I,
    units,
    x_strides,
    y_strides,
    eps,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
    BLOCK_C: tl.constexpr,  # ≥ C, units per layer
    STAGES: tl.constexpr,  # software-pipelining stages of the loop over the unit's tiles
):
    # reverse order: the units read last by the statistics pass come first
    n_units = tl.num_programs(0)
    u = n_units - 1 - tl.program_id(0)
    r, t_begin, t_end, cols, col_ok = _unit_geometry(u, T, I, units, BLOCK_I)
    CT, CI, CHUNK_T = units
    C = CT * CI
    # the layer's C partials (n_k, mean_k, M2_k) merged into (N, μ, M2), k = unit in layer
    k = tl.arange(0, BLOCK_C)
    k_ok = k < C
    first = r.to(tl.int64) * C
    mean_k = tl.load(PARTIAL + first + k, mask=k_ok, other=0.0)
    m2_k = tl.load(PARTIAL + n_units + first + k, mask=k_ok, other=0.0)
    rows_k = tl.minimum(T - (k // CI) * CHUNK_T, CHUNK_T)
    cols_k = tl.minimum(I - (k % CI) * BLOCK_I, BLOCK_I)
    n_k = tl.where(k_ok, rows_k.to(tl.float32) * cols_k.to(tl.float32), 0.0)
    N, mu, m2 = tl.reduce((n_k, mean_k, m2_k), 0, _chan_merge)
    # rstd = 1/sqrt(M2/N + eps)
    rstd = 1.0 / tl.sqrt(m2 / N + eps)
    first_unit = (u % C) == 0
    tl.store(MEAN + r, mu, mask=first_unit)
    tl.store(RSTD + r, rstd, mask=first_unit)
    a, b = _load_ab(A, B, cols, col_ok)
    x_layer = X + r.to(tl.int64) * x_strides[0]
    y_layer = Y + r.to(tl.int64) * y_strides[0]
    for t0 in tl.range(t_begin, t_end, BLOCK_T, num_stages=STAGES):
        rows = t0 + tl.arange(0, BLOCK_T)
        mask = (rows < t_end)[:, None] & col_ok[None, :]
        x_offsets = _offsets(rows, cols, _in_layer(x_strides))
        x = tl.load(x_layer + x_offsets, mask=mask, other=0.0).to(tl.float32)
        # y = act(A (L − μ) rstd + B)
        y = activation(a * ((x - mu) * rstd) + b, ACTIVATION)
        tl.store(y_layer + _offsets(rows, cols, _in_layer(y_strides)), y, mask=mask)


# ---------------------------------------------------------------------------- backward


@triton.jit
def _load_tile_pair(
    DY_LAYER,  # (T, I) one layer of dy
    X_LAYER,  # (T, I) the same layer of x
    t0,
    t_end,
    cols,
    col_ok,
    dy_strides,
    x_strides,
    BLOCK_T: tl.constexpr,
):
    """dy and x (own dtypes) of rows t0 … t0 + BLOCK_T − 1 below t_end; zero elsewhere."""
    rows = t0 + tl.arange(0, BLOCK_T)
    mask = (rows < t_end)[:, None] & col_ok[None, :]
    dy = tl.load(DY_LAYER + _offsets(rows, cols, _in_layer(dy_strides)), mask=mask, other=0.0)
    x = tl.load(X_LAYER + _offsets(rows, cols, _in_layer(x_strides)), mask=mask, other=0.0)
    return dy, x


@triton.jit
def _add_unit_tile(loaded, mu, rstd, a, b, sum_GA, sum_GAh, ACTIVATION: tl.constexpr):
    """The running Σ G A and Σ G A h with one tile's added."""
    dy, x = loaded
    # h = (L − μ) rstd, G = dy act'(A h + B) (zero where dy was masked)
    h = (x.to(tl.float32) - mu) * rstd
    GA = dy.to(tl.float32) * activation_derivative(a * h + b, ACTIVATION) * a
    return sum_GA + GA, sum_GAh + GA * h


@triton.jit
def _layer_bwd_sums_partial(
    DY,  # (R, T, I) upstream gradient, strides dy_strides
    X,  # (R, T, I) the forward's input, strides x_strides
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32: μ from the forward
    RSTD,  # (R,) float32: 1/σ from the forward
    SUMS,  # (2, R·C) float32 out, contiguous: [0, u] Σ G A over unit u, [1, u] Σ G A h
    T,
    I,
    units,
    dy_strides,
    x_strides,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
    PIPELINE: tl.constexpr,  # "hand" (one tile ahead) or "compiler" (two stages)
):
    u = tl.program_id(0)
    r, t_begin, t_end, cols, col_ok = _unit_geometry(u, T, I, units, BLOCK_I)
    mu = tl.load(MEAN + r)
    rstd = tl.load(RSTD + r)
    a, b = _load_ab(A, B, cols, col_ok)
    dy_layer = DY + r.to(tl.int64) * dy_strides[0]
    x_layer = X + r.to(tl.int64) * x_strides[0]
    sum_GA = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    sum_GAh = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    if PIPELINE == "compiler":
        for t0 in tl.range(t_begin, t_end, BLOCK_T, num_stages=2):
            loaded = _load_tile_pair(
                dy_layer, x_layer, t0, t_end, cols, col_ok, dy_strides, x_strides, BLOCK_T
            )
            sum_GA, sum_GAh = _add_unit_tile(loaded, mu, rstd, a, b, sum_GA, sum_GAh, ACTIVATION)
    else:
        # the next tile's loads are issued before this tile's arithmetic (nothing read past
        # t_end)
        next_1 = _load_tile_pair(
            dy_layer, x_layer, t_begin, t_end, cols, col_ok, dy_strides, x_strides, BLOCK_T
        )
        for t0 in range(t_begin, t_end, BLOCK_T):
            loaded = next_1
            next_1 = _load_tile_pair(
                dy_layer, x_layer, t0 + BLOCK_T, t_end, cols, col_ok, dy_strides, x_strides,
                BLOCK_T,
            )  # fmt: skip
            sum_GA, sum_GAh = _add_unit_tile(loaded, mu, rstd, a, b, sum_GA, sum_GAh, ACTIVATION)
    tl.store(SUMS + u, tl.sum(sum_GA))
    tl.store(SUMS + tl.num_programs(0) + u, tl.sum(sum_GAh))


@triton.jit
def _layer_bwd_combine(
    SUMS,  # (2, R·C) float32, contiguous: per-unit Σ G A and Σ G A h
    MEANS,  # (2, R) float32 out, contiguous: [0, r] mean(G A), [1, r] mean(G A h) of layer r
    C,
    N,
    BLOCK_C: tl.constexpr,
):
    r = tl.program_id(0)
    R = tl.num_programs(0)
    first = r.to(tl.int64) * C
    acc_GA = tl.zeros([BLOCK_C], dtype=tl.float32)
    acc_GAh = tl.zeros([BLOCK_C], dtype=tl.float32)
    for k0 in range(0, C, BLOCK_C):
        k = k0 + tl.arange(0, BLOCK_C)
        acc_GA += tl.load(SUMS + first + k, mask=k < C, other=0.0)
        acc_GAh += tl.load(SUMS + R * C + first + k, mask=k < C, other=0.0)
    # mean(G A) = (1/N) Σ_{t,i} G A,  mean(G A h) = (1/N) Σ_{t,i} G A h
    tl.store(MEANS + r, tl.sum(acc_GA, axis=0) / N)
    tl.store(MEANS + R + r, tl.sum(acc_GAh, axis=0) / N)


@triton.jit
def _load_row_block(
    DY,  # (R, T, I)
    X,  # (R, T, I)
    MEAN,  # (R,) float32
    RSTD,  # (R,) float32
    MEANS,  # (2, R) float32: mean(G A), mean(G A h)
    v,
    R,
    T,
    cols,
    col_ok,
    dy_strides,
    x_strides,
    BLOCK_T: tl.constexpr,
):
    """(dy, x, μ, rstd, mean(G A), mean(G A h)) of row block v = r·TB + tb (rows tb·BLOCK_T,
    …, TB blocks per layer), dy and x in their own dtypes; zeros (nothing read) for v < 0."""
    v = tl.cast(v, tl.int32)
    valid = v >= 0
    TB = tl.cdiv(T, BLOCK_T)
    r = tl.where(valid, v // TB, 0)
    # no rows for v < 0: the block starts at row T
    rows = tl.where(valid, (v % TB) * BLOCK_T, T) + tl.arange(0, BLOCK_T)
    mask = (rows < T)[:, None] & col_ok[None, :]
    dy_layer = DY + r.to(tl.int64) * dy_strides[0]
    x_layer = X + r.to(tl.int64) * x_strides[0]
    dy = tl.load(dy_layer + _offsets(rows, cols, _in_layer(dy_strides)), mask=mask, other=0.0)
    x = tl.load(x_layer + _offsets(rows, cols, _in_layer(x_strides)), mask=mask, other=0.0)
    mu = tl.load(MEAN + r, mask=valid, other=0.0)
    rstd = tl.load(RSTD + r, mask=valid, other=0.0)
    mean_GA = tl.load(MEANS + r, mask=valid, other=0.0)
    mean_GAh = tl.load(MEANS + R + r, mask=valid, other=0.0)
    return dy, x, mu, rstd, mean_GA, mean_GAh


@triton.jit
def _row_block_backward(
    loaded,  # from `_load_row_block`
    v,
    a,  # (1, BLOCK_I) float32
    b,  # (1, BLOCK_I) float32
    DX,  # (R, T, I) out
    dA_acc,  # (BLOCK_T, BLOCK_I) float32 running Σ G h
    dB_acc,  # (BLOCK_T, BLOCK_I) float32 running Σ G
    T,
    cols,
    col_ok,
    dx_strides,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
):
    """Writes dx of row block v; returns the accumulators with its G h and G added."""
    dy, x, mu, rstd, mean_GA, mean_GAh = loaded
    # h = (L − μ) rstd, G = dy act'(A h + B)
    h = (x.to(tl.float32) - mu) * rstd
    G = dy.to(tl.float32) * activation_derivative(a * h + b, ACTIVATION)
    # dB[i] += Σ G, dA[i] += Σ G h
    dA_acc += G * h
    dB_acc += G
    # dx = rstd (G A − mean(G A) − h mean(G A h)), the means over the layer's N elements
    dx = rstd * (G * a - mean_GA - h * mean_GAh)
    TB = tl.cdiv(T, BLOCK_T)
    rows = (v % TB) * BLOCK_T + tl.arange(0, BLOCK_T)
    mask = (rows < T)[:, None] & col_ok[None, :]
    dx_layer = DX + (v // TB).to(tl.int64) * dx_strides[0]
    tl.store(dx_layer + _offsets(rows, cols, _in_layer(dx_strides)), dx, mask=mask)
    return dA_acc, dB_acc


@triton.jit
def _layer_norm_bwd_dx_split(
    DY,  # (R, T, I) upstream gradient, strides dy_strides
    X,  # (R, T, I) the forward's input, strides x_strides
    A,  # (I,) contiguous
    B,  # (I,) contiguous
    MEAN,  # (R,) float32: μ
    RSTD,  # (R,) float32: 1/σ
    MEANS,  # (2, R) float32 from `_layer_bwd_combine`: mean(G A), mean(G A h) per layer
    DX,  # (R, T, I) out, strides dx_strides; x's dtype
    DA_PARTIAL,  # (Q, I) out, contiguous: Σ G h over program q's row blocks (dA when Q = 1)
    DB_PARTIAL,  # (Q, I) out, contiguous: Σ G over program q's row blocks (dB when Q = 1)
    R,
    T,
    I,
    dy_strides,
    x_strides,
    dx_strides,
    ACTIVATION: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_I: tl.constexpr,
    AHEAD: tl.constexpr,  # blocks whose loads are in flight while one is computed: 1 or 2
    PIPELINE: tl.constexpr,  # "hand" or "compiler"
):
    q = tl.program_id(0)
    Q = tl.num_programs(0)
    cols = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    col_ok = cols < I
    a, b = _load_ab(A, B, cols, col_ok)
    dA_acc = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    dB_acc = tl.zeros([BLOCK_T, BLOCK_I], dtype=tl.float32)
    # row blocks v = V − 1 − j for j = q, q + Q, …: the last layers' last rows first
    V = R * tl.cdiv(T, BLOCK_T)
    if PIPELINE == "compiler":
        for j in tl.range(q, V, Q, num_stages=AHEAD + 1):
            v = V - 1 - j
            loaded = _load_row_block(
                DY, X, MEAN, RSTD, MEANS, v, R, T, cols, col_ok, dy_strides, x_strides, BLOCK_T
            )
            dA_acc, dB_acc = _row_block_backward(
                loaded, v, a, b, DX, dA_acc, dB_acc, T, cols, col_ok, dx_strides,
                ACTIVATION, BLOCK_T,
            )  # fmt: skip
    else:
        # the loads of the next AHEAD blocks are issued before a block's arithmetic; blocks
        # past the first (v < 0) read nothing
        next_1 = _load_row_block(
            DY, X, MEAN, RSTD, MEANS, V - 1 - q, R, T, cols, col_ok, dy_strides, x_strides,
            BLOCK_T,
        )  # fmt: skip
        if AHEAD == 2:
            next_2 = _load_row_block(
                DY, X, MEAN, RSTD, MEANS, V - 1 - q - Q, R, T, cols, col_ok, dy_strides,
                x_strides, BLOCK_T,
            )  # fmt: skip
        for j in range(q, V, Q):
            loaded = next_1
            if AHEAD == 2:
                next_1 = next_2
                next_2 = _load_row_block(
                    DY, X, MEAN, RSTD, MEANS, V - 1 - j - 2 * Q, R, T, cols, col_ok,
                    dy_strides, x_strides, BLOCK_T,
                )  # fmt: skip
            else:
                next_1 = _load_row_block(
                    DY, X, MEAN, RSTD, MEANS, V - 1 - j - Q, R, T, cols, col_ok, dy_strides,
                    x_strides, BLOCK_T,
                )  # fmt: skip
            dA_acc, dB_acc = _row_block_backward(
                loaded, V - 1 - j, a, b, DX, dA_acc, dB_acc, T, cols, col_ok, dx_strides,
                ACTIVATION, BLOCK_T,
            )  # fmt: skip
    out = q.to(tl.int64) * I + cols
    tl.store(DA_PARTIAL + out, tl.sum(dA_acc, axis=0), mask=col_ok)
    tl.store(DB_PARTIAL + out, tl.sum(dB_acc, axis=0), mask=col_ok)
