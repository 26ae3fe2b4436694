"""Numpy twin of ``cython_kernels/knn.pyx``.

Brute force over chunks of queries x all points: ``O(nq * np)`` time, meant
for tests and small inputs. The squared distances are computed with the same
expression as the kernel (``dx*dx + dy*dy`` with ``dx = qx - px``; numpy
does not contract it into an FMA), so the results are identical bit for bit.
"""

import numpy as np

# Elements of one (queries x points) distance block.
_BLOCK = 1 << 21


def knn_grid(px, py, pgid, qx, qy, qgid, qr2, k, out_idx, out_d2, out_count):
    """Exact k nearest neighbours of each query among the points (brute force).

    Numpy twin of ``tokensim_hpc._kernels.knn.knn_grid``, with the same
    arguments and results: for query ``q``, the up-to-``k`` points with the
    smallest ``(d2, pgid)`` (then index), among those with
    ``pgid != qgid[q]`` and ``d2 <= qr2[q]``.

    Parameters
    ----------
    px, py : float64 arrays of length np
        Point positions.
    pgid : int64 array of length np
        Global ids of the points.
    qx, qy : float64 arrays of length nq
        Query positions.
    qgid : int64 array of length nq
        Global id of each query; points with this gid are excluded.
    qr2 : float64 array of length nq
        Squared search radius, inclusive; may be ``inf``.
    k : int
        Neighbours per query, >= 1.
    out_idx : int64 array, shape (nq, k)
        Receives the point indices sorted by ``(d2, gid)``; ``-1`` pads.
    out_d2 : float64 array, shape (nq, k)
        Receives the squared distances; ``inf`` pads.
    out_count : int32 array of length nq
        Receives the number of neighbours found.

    Raises
    ------
    ValueError
        If ``k < 1`` or the array shapes disagree.
    """
    px, py, qx, qy, qr2 = (np.asarray(a, dtype=np.float64) for a in (px, py, qx, qy, qr2))
    pgid = np.asarray(pgid, dtype=np.int64)
    qgid = np.asarray(qgid, dtype=np.int64)
    npt, nq = px.shape[0], qx.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if py.shape[0] != npt or pgid.shape[0] != npt:
        raise ValueError("px, py and pgid must have the same length")
    if qy.shape[0] != nq or qgid.shape[0] != nq or qr2.shape[0] != nq:
        raise ValueError("qx, qy, qgid and qr2 must have the same length")
    if out_idx.shape != (nq, k) or out_d2.shape != (nq, k) or out_count.shape != (nq,):
        raise ValueError("out_idx and out_d2 must have shape (nq, k), out_count (nq,)")

    out_idx[...] = -1
    out_d2[...] = np.inf
    out_count[...] = 0
    if npt == 0 or nq == 0:
        return
    kk = min(k, npt)
    chunk = max(1, _BLOCK // npt)
    for q0 in range(0, nq, chunk):
        q1 = min(nq, q0 + chunk)
        # Overflow to inf and NaN (non-finite inputs) are results, not errors.
        with np.errstate(over="ignore", invalid="ignore"):
            dx = qx[q0:q1, None] - px[None, :]
            dy = qy[q0:q1, None] - py[None, :]
            d2 = dx * dx + dy * dy
        valid = (pgid[None, :] != qgid[q0:q1, None]) & (d2 <= qr2[q0:q1, None])
        # The kk-th smallest valid d2 of each row (inf when fewer are valid):
        # every point of the result has d2 <= it, ties included.
        masked = np.where(valid, d2, np.inf)
        kth = np.partition(masked, kk - 1, axis=1)[:, kk - 1]
        rows, cols = np.nonzero(valid & (d2 <= kth[:, None]))
        # Sort the candidates by (row, d2, gid, idx); cols ascend within a row,
        # and lexsort is stable, so idx breaks the remaining ties.
        cd2 = d2[rows, cols]
        order = np.lexsort((pgid[cols], cd2, rows))
        rows, cols, cd2 = rows[order], cols[order], cd2[order]
        ncand = np.bincount(rows, minlength=q1 - q0)
        first = np.concatenate(([0], np.cumsum(ncand)[:-1]))
        rank = np.arange(rows.shape[0]) - first[rows]
        keep = rank < k
        out_idx[q0 + rows[keep], rank[keep]] = cols[keep]
        out_d2[q0 + rows[keep], rank[keep]] = cd2[keep]
        out_count[q0:q1] = np.minimum(ncand, k)
