"""Numpy twin of ``cython_kernels/risk.pyx`` (same arguments, same results).

Row sums add the edges in row order: position by position across all rows
(position c of every row that has more than c edges), as the kernel does
row by row.
"""

import numpy as np

from . import exactsum

SD_MIN = 1e-150


def edge_correlations(indptr, indices, dev_isd, cov, lam, row_sum, degree, dbar, acc):
    """Numpy twin of ``risk.edge_correlations``."""
    dev, isd = dev_isd[:, 0], dev_isd[:, 1]
    n = indptr.shape[0] - 1
    degree_e = np.diff(indptr)
    src = np.repeat(np.arange(n), degree_e)
    j = indices.astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflows as in C
        cov[:] = lam * cov + ((1.0 - lam) * dev)[src] * dev[j]
        w = cov * isd[j]  # where 1/sd is 0, the term is c * 0 = 0
    row = np.zeros(n)
    for c in range(int(degree_e.max(initial=0))):
        rows = np.flatnonzero(degree_e > c)
        row[rows] = row[rows] + w[indptr[rows] + c]
    with np.errstate(invalid="ignore"):  # (inf * 0 where the select below takes 0)
        row = np.where(isd[:n] != 0.0, row * isd[:n], 0.0)
    if row_sum.shape[0]:  # empty: the w_i are not wanted
        row_sum[:n] = row
    dd = degree - dbar
    exactsum.accumulate(row * (dd * dd), acc[0])
    exactsum.accumulate(row, acc[1])


def agent_moments(holdings, slot_value, wealth_prev, mean, var, lam, dev_isd):
    """Numpy twin of ``risk.agent_moments``."""
    n = holdings.shape[1]
    w = np.zeros(n)
    for s in range(holdings.shape[0]):
        w = w + holdings[s] * slot_value[s]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(wealth_prev > 0.0, w / wealth_prev - 1.0, 0.0)
    wealth_prev[:] = w
    x = r - mean
    dev_isd[:n, 0] = np.where(np.isfinite(x), x, 0.0)  # a non-finite deviation goes out as 0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowed return, as in C
        var[:] = lam * var + (1.0 - lam) * (x * x)
        mean[:] = lam * mean + (1.0 - lam) * r
    sd = np.sqrt(var)
    with np.errstate(divide="ignore"):
        dev_isd[:n, 1] = np.where(sd >= SD_MIN, 1.0 / sd, 0.0)


def in_ties(indices, ties):
    """Numpy twin of ``risk.in_ties``."""
    ties += np.bincount(indices, minlength=ties.shape[0])


def transpose_sums(b, index, coef, starts, rows, out):
    """Numpy twin of ``risk.transpose_sums``: the segments' terms added position by
    position across all segments (term c of every segment longer than c), which is
    each segment's order."""
    m, k = index.shape[0], starts.shape[0]
    if coef.shape[0] != m or rows.shape[0] != k:
        raise ValueError("transpose_sums: coef must match index and rows must match starts")
    ends = np.append(starts[1:], m).astype(np.int64)
    length = ends - starts
    if np.any(length <= 0) or (k and starts[0] < 0):
        raise ValueError("transpose_sums: every segment needs a term (starts strictly "
                         "increasing, below the number of terms)")
    if k and (rows.min() < 0 or rows.max() >= out.shape[0]):
        raise ValueError("transpose_sums: a row is outside out")
    if m and (index.min() < 0 or index.max() >= b.shape[0]):
        raise ValueError("transpose_sums: an index is outside b")
    with np.errstate(invalid="ignore", over="ignore"):  # as in C: inf * 0 is NaN
        terms = coef * b[index]
    acc = terms[starts]
    for c in range(1, int(length.max(initial=0))):
        seg = np.flatnonzero(length > c)
        acc[seg] = acc[seg] + terms[starts[seg] + c]
    out[rows] = acc


def transpose_order(n, target, key):
    """Numpy twin of ``risk.transpose_order``."""
    if key.shape[0] != target.shape[0]:
        raise ValueError("transpose_order: target and key must have the same length")
    if n < 0:
        raise ValueError(f"transpose_order: n must be >= 0, got {n}")
    if target.size and (target.min() < 0 or target.max() >= n):
        raise ValueError(f"transpose_order: a target is outside [0, {n})")
    order = np.lexsort((key, target)).astype(np.int64)
    counts = np.bincount(target, minlength=n)
    rows = np.flatnonzero(counts).astype(np.int64)
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return order, rows, starts[rows]
