"""Triton kernels of the mutual-information objective: the joint's rows S, the column sums s,
each row's logsumexp and the single examples' Σ Q ln Q (forward); the gradient (backward).

Notation of `infonorm.mutual_information`: z[b] a row of logits, Q[b] = softmax(z[b]),
lse[b] = logsumexp(z[b]); rows[b] ∈ [0, R) the row of S that example b adds to, −2 for an
example alone with its label (no row of S), −1 for an ignored one. The forward walks the
examples sorted by row ("positions" k, example ORDER[k], row SORTED_ROWS[k]), so that the
examples of one row of S are adjacent; the batch is cut into P chunks of K positions.

- `_mi_fwd_chunks`: grid (P, column blocks). Each program walks its chunk tile by tile
  (BLOCK_R positions × BLOCK_C columns), computes Q (the softmax itself when a row fits in
  one block, else exp(z − lse) from `_mi_logsumexp`), adds it to the chunk's column sums
  and, per row of S, to a running sum that is written where the row's examples end: to S
  itself when they all lie in the chunk, else to the chunk's HEAD (the part of a row begun
  in an earlier chunk) or TAIL (a row begun here that goes on) partial row. On the side,
  the programs of column block 0 find where each row's examples begin (binary searches).
- `_mi_logsumexp`: one program per example, for rows too long for one block: lse and
  Σ_c Q ln Q by an online (running maximum) pass over the row.
- `_mi_fwd_combine`: grid (R + 1, column blocks). Row r of S spanning chunks p0 < p1 is
  TAIL[p0] + HEAD[p0 + 1] + … + HEAD[p1]; an empty row is 0; program R sums the chunks'
  column sums into s and the single examples' terms into one number.
- `_mi_bwd`: dz = scale · Q ∘ (G − Σ_c Q G) per example, the row in registers or walked in
  two sweeps (Σ_c Q G first, then dz), with G = Λ[rows[b]] or z[b] − ln s.

Every sum runs in a fixed order (tiles in order, tree reductions within a tile, partial
rows added in chunk order): no atomics, results repeat bit for bit. Only operations that
both the GPU compiler and Triton's CPU interpreter know are used (`tl.exp`, `tl.log`).
"""

# l is the softmax's normalizer Σ e^{z−m}, as in the formulas (ambiguous to E741 only)
# ruff: noqa: E741

from __future__ import annotations

import triton
import triton.language as tl

# a row value that no example has (rows are ≥ −2): "no such row"
_NO_ROW = tl.constexpr(-3)


@triton.jit
def _mi_fwd_chunks(
    Z,  # (B, C) logits, strides (stride_zb, stride_zc); float32, bfloat16 or float16
    SORTED_ROWS,  # (B,) int64, contiguous: rows sorted ascending
    ORDER,  # (B,) int64, contiguous: ORDER[k] = the example at sorted position k
    LSE,  # (B,) float32: out when LSE_KNOWN is False (computed here), else in
    S,  # (R, C) float32 out, contiguous: rows whose examples all lie in one chunk
    S_PART,  # (P, C) float32 out, contiguous: Σ Q over the chunk's counted examples
    HEAD,  # (P, C) float32 out, contiguous: Σ Q over the chunk's part of a row begun before
    TAIL,  # (P, C) float32 out, contiguous: Σ Q over a row begun in the chunk that goes on
    SINGLE_PART,  # (P,) float32 out (LSE_KNOWN False): Σ over the chunk's singles of Σ Q ln Q
    BOUNDS,  # (R + 1,) int64 out: BOUNDS[r] = the first sorted position of a row ≥ r
    B,
    C,
    R,
    K,
    SEARCH_STEPS,
    stride_zb,
    stride_zc,
    LSE_KNOWN: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_BOUNDS: tl.constexpr,
):
    p = tl.program_id(0)
    if tl.program_id(1) == 0:
        # on the side, for the combine: where rows p·BLOCK_BOUNDS, … begin (row r's examples
        # sit at sorted positions [BOUNDS[r], BOUNDS[r + 1]))
        bounded = p * BLOCK_BOUNDS + tl.arange(0, BLOCK_BOUNDS)
        first = _lower_bound(SORTED_ROWS, B, bounded, SEARCH_STEPS)
        tl.store(BOUNDS + bounded, first, mask=bounded <= R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    col_ok = cols < C
    start = p * K
    stop = tl.minimum(start + K, B)
    # the row continuing from the previous chunk (its first position's row, if the position
    # before holds the same row), else no row
    r_first = tl.load(SORTED_ROWS + start)
    r_before = tl.load(SORTED_ROWS + tl.maximum(start - 1, 0))
    head_row = tl.where((start > 0) & (r_before == r_first), r_first, _NO_ROW)
    s_acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    single_acc = tl.full([], 0.0, tl.float32)
    # the running sum of the row open at the end of the previous tile, and that row
    carry = tl.zeros([BLOCK_C], dtype=tl.float32)
    carry_row = tl.full([], _NO_ROW, tl.int64)
    for t0 in range(start, stop, BLOCK_R):
        k = t0 + tl.arange(0, BLOCK_R)
        k_ok = k < stop
        r = tl.load(SORTED_ROWS + k, mask=k_ok, other=-1)
        r_next = tl.load(SORTED_ROWS + k + 1, mask=k + 1 < B, other=_NO_ROW)
        b = tl.load(ORDER + k, mask=k_ok, other=0)
        joint = k_ok & (r >= 0) & (r < R)
        single = k_ok & (r == -2)
        mask = k_ok[:, None] & col_ok[None, :]
        z = tl.load(
            Z + b[:, None] * stride_zb + cols[None, :] * stride_zc, mask=mask, other=float("-inf")
        ).to(tl.float32)
        # positions past the chunk: finite logits, results never used
        z = tl.where(k_ok[:, None], z, 0.0)
        if LSE_KNOWN:
            # Q = exp(z − lse)
            lse = tl.load(LSE + b, mask=k_ok, other=0.0)
            Q = tl.exp(z - lse[:, None])
        else:
            # m = max_c z, l = Σ_c e^{z−m}, lse = m + ln l, Q = e^{z−m}/l
            m = tl.max(z, axis=1)
            e = tl.exp(z - m[:, None])
            l = tl.sum(e, axis=1)
            tl.store(LSE + b, m + tl.log(l), mask=k_ok)
            Q = e * (1.0 / l)[:, None]
            # Σ_c Q ln Q = Σ_c e (z − m)/l − ln l: both terms ≤ 0 (no cancellation), no log
            # per entry; an entry with e = 0 (z = −inf) counts 0
            ez = tl.sum(e * tl.where(e > 0, z - m[:, None], 0.0), axis=1)
            single_acc += tl.sum(tl.where(single, ez / l - tl.log(l), 0.0), axis=0)
        # s += Σ Q over the examples counted in the batch (singles and rows of S)
        s_acc += tl.sum(tl.where((joint | single)[:, None], Q, 0.0), axis=0)
        # per row of S, its examples' Σ Q within the tile (sorted: they are adjacent),
        # T[i] = Σ_k [r_k = r_i] Q_k, plus the sum carried over from the previous tile
        v = tl.where(joint[:, None], Q, 0.0)
        if BLOCK_R == 1:
            T = v
        else:
            same = r[:, None] == r[None, :]
            T = tl.sum(tl.where(same[:, :, None], v[None, :, :], 0.0), axis=1)
        T += tl.where((joint & (r == carry_row))[:, None], carry[None, :], 0.0)
        # where the sum goes, from the last example of its row in this chunk
        ends = r_next != r
        last = k == stop - 1
        began_before = r == head_row
        out_ok = col_ok[None, :]
        to_S = joint & ends & ~began_before
        to_head = joint & began_before & (ends | last)
        to_tail = joint & ~began_before & ~ends & last
        r64 = tl.where(to_S, r, 0).to(tl.int64)
        tl.store(S + r64[:, None] * C + cols[None, :], T, mask=to_S[:, None] & out_ok)
        partial = p.to(tl.int64) * C + cols[None, :] + tl.zeros([BLOCK_R, 1], dtype=tl.int64)
        tl.store(HEAD + partial, T, mask=to_head[:, None] & out_ok)
        tl.store(TAIL + partial, T, mask=to_tail[:, None] & out_ok)
        # the tile's last example: its row's sum so far goes on to the next tile (a tile cut
        # short by the chunk's end is its last: nothing goes on)
        tile_last = k == t0 + BLOCK_R - 1
        carry = tl.sum(tl.where(tile_last[:, None], T, 0.0), axis=0)
        carry_row = tl.max(tl.where(tile_last, r, _NO_ROW), axis=0)
    tl.store(S_PART + p.to(tl.int64) * C + cols, s_acc, mask=col_ok)
    if not LSE_KNOWN:
        tl.store(SINGLE_PART + p, single_acc)


@triton.jit
def _mi_logsumexp(
    Z,  # (B, C) logits, strides (stride_zb, stride_zc)
    ROWS,  # (B,) int64: rows of S, −2 single, −1 ignored
    LSE,  # (B,) float32 out: logsumexp of each row of z
    SINGLE,  # (B,) float32 out: Σ_c Q ln Q for single examples, 0 for the others
    C,
    stride_zb,
    stride_zc,
    BLOCK_C: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    offsets = tl.arange(0, BLOCK_C)
    # running maximum m, l = Σ e^{z−m}, u = Σ e^{z−m} (z − m) over the blocks seen so far
    m = tl.full([], float("-inf"), tl.float32)
    l = tl.full([], 0.0, tl.float32)
    u = tl.full([], 0.0, tl.float32)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + offsets
        z = tl.load(Z + b * stride_zb + cols * stride_zc, mask=cols < C, other=float("-inf")).to(
            tl.float32
        )
        m_new = tl.maximum(m, tl.max(z, axis=0))
        # shift by m_new, or by 0 while every logit so far is −inf
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m - shift)
        e = tl.exp(z - shift)
        # e^{z−shift} (z − shift) = α e^{z−m} ((z − m) + (m − shift)) for the earlier blocks
        dm = tl.where(l > 0, m - shift, 0.0)
        u = alpha * (u + dm * l) + tl.sum(e * tl.where(e > 0, z - shift, 0.0), axis=0)
        l = alpha * l + tl.sum(e, axis=0)
        m = m_new
    # lse = m + ln l; Σ_c Q ln Q = u/l − ln l
    tl.store(LSE + b, m + tl.log(l))
    r = tl.load(ROWS + b)
    tl.store(SINGLE + b, tl.where(r == -2, u / l - tl.log(l), 0.0))


@triton.jit
def _lower_bound(SORTED, n, key, STEPS):
    """For each key, the first position of SORTED[:n] (ascending) holding a value ≥ key (n
    if none), by STEPS = bit length of n halvings."""
    lo = tl.zeros_like(key).to(tl.int64)
    hi = lo + n
    for _ in range(STEPS):
        mid = (lo + hi) // 2
        below = tl.load(SORTED + tl.minimum(mid, n - 1)) < key
        active = lo < hi
        lo = tl.where(active & below, mid + 1, lo)
        hi = tl.where(active & ~below, mid, hi)
    return lo


@triton.jit
def _mi_fwd_combine(
    S,  # (R, C) float32, contiguous: completed here for the rows spanning chunks
    S_PART,  # (P, C) float32, contiguous
    HEAD,  # (P, C) float32, contiguous
    TAIL,  # (P, C) float32, contiguous
    SINGLE_PART,  # (N_SINGLE,) float32: the single examples' Σ Q ln Q, in pieces
    BOUNDS,  # (R + 1,) int64: row r's examples sit at sorted positions [BOUNDS[r], BOUNDS[r + 1])
    S_SUM,  # (C,) float32 out: s
    SUM_SINGLE,  # () float32 out
    C,
    R,
    K,
    P,
    N_SINGLE,
    BLOCK_P: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < C
    parts = tl.arange(0, BLOCK_P)
    if row == R:
        # s[c] = Σ_p S_PART[p, c], in a fixed order
        acc = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
        for p0 in range(0, P, BLOCK_P):
            q = p0 + parts
            mask = (q < P)[:, None] & col_ok[None, :]
            acc += tl.load(
                S_PART + q.to(tl.int64)[:, None] * C + cols[None, :], mask=mask, other=0.0
            )
        tl.store(S_SUM + cols, tl.sum(acc, axis=0), mask=col_ok)
        if tl.program_id(1) == 0:
            pieces = tl.arange(0, BLOCK_S)
            acc_single = tl.zeros([BLOCK_S], dtype=tl.float32)
            for i0 in range(0, N_SINGLE, BLOCK_S):
                i = i0 + pieces
                acc_single += tl.load(SINGLE_PART + i, mask=i < N_SINGLE, other=0.0)
            tl.store(SUM_SINGLE, tl.sum(acc_single, axis=0))
    else:
        # row's examples sit at sorted positions [a, e), in chunks p0 = a // K to p1
        a = tl.load(BOUNDS + row)
        e = tl.load(BOUNDS + row + 1)
        out = S + row.to(tl.int64) * C + cols
        if a == e:
            tl.store(out, tl.zeros([BLOCK_N], dtype=tl.float32), mask=col_ok)
        else:
            p0 = a // K
            p1 = (e - 1) // K
            # one chunk: `_mi_fwd_chunks` wrote S[row]; else TAIL[p0] + Σ_{p0<p≤p1} HEAD[p]
            if p0 < p1:
                first = tl.load(TAIL + p0 * C + cols, mask=col_ok, other=0.0)
                acc = tl.zeros([BLOCK_P, BLOCK_N], dtype=tl.float32)
                for q0 in range(p0 + 1, p1 + 1, BLOCK_P):
                    q = q0 + parts
                    mask = (q <= p1)[:, None] & col_ok[None, :]
                    acc += tl.load(HEAD + q[:, None] * C + cols[None, :], mask=mask, other=0.0)
                tl.store(out, first + tl.sum(acc, axis=0), mask=col_ok)


@triton.jit
def _mi_bwd(
    Z,  # (B, C) logits, strides (stride_zb, stride_zc)
    ROWS,  # (B,) int64: rows of S, −2 single, −1 ignored
    LSE,  # (B,) float32: logsumexp of each row of z, from the forward
    LAM,  # (R, C) float32, contiguous: Λ, the pointwise information of each row of S
    LN_S,  # (C,) float32, contiguous: ln s
    SCALE,  # () float32: the factor of every gradient (read on the device)
    DZ,  # (B, C) out, strides (stride_dzb, stride_dzc); z's dtype
    B,
    C,
    R,
    stride_zb,
    stride_zc,
    stride_dzb,
    stride_dzc,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
    ONE_BLOCK: tl.constexpr,
):
    """BLOCK_R examples per program; ONE_BLOCK: a row is one block of BLOCK_C ≥ C columns
    (one sweep), else two sweeps over blocks, the second re-reading z (and Λ) from cache."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < B
    rows64 = rows.to(tl.int64)
    r = tl.load(ROWS + rows, mask=row_ok, other=-1)
    joint = row_ok & (r >= 0) & (r < R)
    single = row_ok & (r == -2)
    lse = tl.load(LSE + rows, mask=joint | single, other=0.0)
    r64 = tl.where(joint, r, 0).to(tl.int64)
    scale = tl.load(SCALE)
    offsets = tl.arange(0, BLOCK_C)
    gbar = tl.zeros([BLOCK_R], dtype=tl.float32)
    if ONE_BLOCK:
        Q, G = _mi_bwd_block(
            Z, LAM, LN_S, rows64, r64, joint, single, lse, offsets, C, stride_zb, stride_zc
        )
        gbar = tl.sum(Q * G, axis=1)
        _mi_bwd_store(DZ, rows64, row_ok, offsets, C, stride_dzb, stride_dzc, scale, Q, G, gbar)
    else:
        # ḡ = Σ_c Q G first, then dz
        for c0 in range(0, C, BLOCK_C):
            Q, G = _mi_bwd_block(
                Z, LAM, LN_S, rows64, r64, joint, single, lse, c0 + offsets, C,
                stride_zb, stride_zc,
            )  # fmt: skip
            gbar += tl.sum(Q * G, axis=1)
        for c0 in range(0, C, BLOCK_C):
            cols = c0 + offsets
            Q, G = _mi_bwd_block(
                Z, LAM, LN_S, rows64, r64, joint, single, lse, cols, C, stride_zb, stride_zc
            )
            _mi_bwd_store(DZ, rows64, row_ok, cols, C, stride_dzb, stride_dzc, scale, Q, G, gbar)


@triton.jit
def _mi_bwd_block(Z, LAM, LN_S, rows64, r64, joint, single, lse, cols, C, stride_zb, stride_zc):
    """Q and G on a block of columns; both 0 for ignored examples and where z = −inf."""
    col_ok = cols < C
    live = (joint | single)[:, None] & col_ok[None, :]
    z = tl.load(
        Z + rows64[:, None] * stride_zb + cols[None, :] * stride_zc, mask=live, other=float("-inf")
    ).to(tl.float32)
    # Q = exp(z − lse): 0 where z = −inf, and for the examples not loaded
    Q = tl.exp(z - lse[:, None])
    lam = tl.load(
        LAM + r64[:, None] * C + cols[None, :], mask=joint[:, None] & col_ok[None, :], other=0.0
    )
    ln_s = tl.load(LN_S + cols, mask=col_ok, other=0.0)
    # G = Λ[rows_b] for a row of S, z − ln s for a single example; 0 where Q = 0 by z = −inf,
    # so that Q G counts 0 there (not 0 · (−inf))
    G = tl.where(joint[:, None], lam, z - ln_s[None, :])
    G = tl.where(z == float("-inf"), 0.0, G)
    return Q, G


@triton.jit
def _mi_bwd_store(DZ, rows64, row_ok, cols, C, stride_dzb, stride_dzc, scale, Q, G, gbar):
    # dz = scale · Q ∘ (G − ḡ), ḡ = Σ_c Q G (0 for ignored examples: Q = G = 0)
    dz = scale * Q * (G - gbar[:, None])
    mask = row_ok[:, None] & (cols < C)[None, :]
    tl.store(DZ + rows64[:, None] * stride_dzb + cols[None, :] * stride_dzc, dz, mask=mask)
