"""numba kernels for exact nearest-neighbour matching: top-2 of a similarity matrix in both directions.

The caller computes a block ``S = A[i0:i0+m] @ B.T`` of cosine similarities with BLAS and hands
it to :func:`top2_update`, which updates in one pass over the block
- for each row i: the best and second-best similarity and the best column (complete for the row);
- for each column j: the running best and second-best over all rows seen so far, and the best row.

Ties go to the lower index (like ``np.argmax``); a tie of the best with another candidate makes
the second best equal the best, so the ratio test rejects it.

Speed notes (AVX2, measured): the updates are written as selects over whole rows with
unconditional stores, four rows at a time, so that LLVM emits vmaxps/vblendvps with no masked
stores (``vmaskmovps`` is microcoded and slow on AMD); the row direction reuses the same kernel on
the row viewed as (n/64, 64) "lanes" followed by a 64-way merge. The cost is ~10 % of the GEMM.
"""

# ruff: noqa: FURB136  (numba: min()/max() here compile to scalar branches, the selects vectorise)

from __future__ import annotations

import numpy as np
from numba import njit

# fast-math without "ninf": -inf/NaN never occur here (similarities of unit vectors lie in
# [-1, 1]) but the sentinel below must stay an ordinary value.
_FM = {"nnan", "nsz", "reassoc", "arcp", "contract"}
NEG = np.float32(-4.0)  # below any similarity of unit vectors
_LANES = 64


@njit(nogil=True, fastmath=_FM, inline="always", cache=True)
def _push(s, c1, c2, idx, iv):
    lo = s if s < c1 else c1
    c2 = lo if lo > c2 else c2
    gt = s > c1
    idx = iv if gt else idx
    c1 = s if gt else c1
    return c1, c2, idx


@njit(nogil=True, fastmath=_FM, cache=True)
def _columnwise_top2(M, best1, best2, best_idx, idx0):
    """Fold the rows of M (m, w) into per-column top-2 arrays; row r is recorded as idx0 + r."""
    m, w = M.shape
    r = 0
    while r + 4 <= m:
        x0 = M[r]
        x1 = M[r + 1]
        x2 = M[r + 2]
        x3 = M[r + 3]
        iv = np.int32(idx0 + r)
        for j in range(w):
            c1 = best1[j]
            c2 = best2[j]
            idx = best_idx[j]
            c1, c2, idx = _push(x0[j], c1, c2, idx, iv)
            c1, c2, idx = _push(x1[j], c1, c2, idx, iv + 1)
            c1, c2, idx = _push(x2[j], c1, c2, idx, iv + 2)
            c1, c2, idx = _push(x3[j], c1, c2, idx, iv + 3)
            best1[j] = c1
            best2[j] = c2
            best_idx[j] = idx
        r += 4
    while r < m:
        x0 = M[r]
        iv = np.int32(idx0 + r)
        for j in range(w):
            c1, c2, idx = _push(x0[j], best1[j], best2[j], best_idx[j], iv)
            best1[j] = c1
            best2[j] = c2
            best_idx[j] = idx
        r += 1


@njit(nogil=True, fastmath=_FM, cache=True)
def top2_update(S, i0, row_best1, row_best2, row_idx, col_best1, col_best2, col_idx):
    """Consume the similarity block S (m, n) holding rows i0 .. i0+m-1 (see module docstring).

    row_* have one entry per row of the full problem (written at i0 .. i0+m-1); col_* have n
    entries, start at (NEG, NEG, -1) and accumulate over successive blocks.
    """
    m, n = S.shape
    lane1 = np.empty(_LANES, np.float32)
    lane2 = np.empty(_LANES, np.float32)
    lane_idx = np.empty(_LANES, np.int32)
    nc = n // _LANES
    for g in range(0, m, 4):
        ge = min(g + 4, m)
        _columnwise_top2(S[g:ge], col_best1, col_best2, col_idx, i0 + g)  # rows still in cache
        for ii in range(g, ge):
            row = S[ii]
            lane1[:] = NEG
            lane2[:] = NEG
            lane_idx[:] = 0
            _columnwise_top2(row[: nc * _LANES].reshape((nc, _LANES)), lane1, lane2, lane_idx, 0)
            b1 = NEG
            b2 = NEG
            bi = n
            for lane in range(_LANES if nc > 0 else 0):
                s = lane1[lane]
                j = lane_idx[lane] * _LANES + lane
                if s > b1 or (s == b1 and j < bi):
                    b2 = b1 if b1 > b2 else b2
                    b1 = s
                    bi = j
                else:
                    b2 = s if s > b2 else b2
                b2 = lane2[lane] if lane2[lane] > b2 else b2
            for j in range(nc * _LANES, n):
                s = row[j]
                if s > b1:
                    b2 = b1
                    b1 = s
                    bi = j
                elif s > b2:
                    b2 = s
            row_best1[i0 + ii] = b1
            row_best2[i0 + ii] = b2
            row_idx[i0 + ii] = bi if bi < n else -1


@njit(nogil=True, cache=True)
def top2_update_grouped(S, i0, row_group, col_group, row_best1, row_best2, row_idx, col_best1, col_best2, col_idx):
    """:func:`top2_update` where the second best is the best of *another group* than the best's.

    row_group (all rows of the problem) and col_group (n,) label keypoints at one location (one
    physical point described several times, e.g. by ASIFT's simulated tilts): a candidate of the
    best's own group is neither a rival in the ratio test nor a second best. Exact, streaming: a
    new best of another group demotes the old best to second; one of the same group does not.
    """
    m, n = S.shape
    for ii in range(m):
        i = i0 + ii
        a = row_group[i]
        row = S[ii]
        b1 = NEG
        b2 = NEG
        bi = -1
        bg = -1
        for j in range(n):
            s = row[j]
            c = col_group[j]
            if s > b1:
                if c != bg:
                    b2 = b1
                b1 = s
                bi = j
                bg = c
            elif s > b2 and c != bg:
                b2 = s
            # column j: rows seen so far
            cb = col_best1[j]
            ci = col_idx[j]
            same = ci >= 0 and row_group[ci] == a
            if s > cb:
                if not same:
                    col_best2[j] = cb
                col_best1[j] = s
                col_idx[j] = i
            elif s > col_best2[j] and not same:
                col_best2[j] = s
        row_best1[i] = b1
        row_best2[i] = b2
        row_idx[i] = bi


@njit(cache=True)
def group_heads(n, stronger, weaker):
    """(n,) group of each keypoint: in order, an ungrouped keypoint heads a group and takes its
    ungrouped weaker neighbours. ``stronger`` < ``weaker``: the close pairs sorted by ``stronger``."""
    group = np.full(n, -1, np.int64)
    k = 0
    m = len(stronger)
    for i in range(n):
        if group[i] < 0:
            group[i] = i
        head = group[i] == i
        while k < m and stronger[k] == i:
            j = weaker[k]
            if head and group[j] < 0:
                group[j] = i
            k += 1
    return group
