"""Numpy twin of ``cython_kernels/risk.pyx`` (same arguments, same results).

Row sums add the edges in row order: position by position across all rows
(position c of every row that has more than c edges), as the kernel does
row by row.
"""

import numpy as np


def edge_correlations(indptr, indices, dev, sd, cov, lam, row_sum):
    """Numpy twin of ``risk.edge_correlations``."""
    n = indptr.shape[0] - 1
    degree = np.diff(indptr)
    src = np.repeat(np.arange(n), degree)
    j = indices.astype(np.int64)
    cov[:] = lam * cov + (1.0 - lam) * (dev[src] * dev[j])
    den = sd[src] * sd[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(den > 0.0, cov / den, 0.0)
    acc = np.zeros(n)
    for c in range(int(degree.max(initial=0))):
        rows = np.flatnonzero(degree > c)
        e = indptr[rows] + c
        # Where den is 0 the kernel adds nothing: acc + 0.0 == acc, except -0.0 + 0.0.
        acc[rows] = np.where(den[e] > 0.0, acc[rows] + w[e], acc[rows])
    row_sum[:n] = acc
