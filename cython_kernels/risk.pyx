# cython: language_level=3
"""Systemic-risk kernels (paper 6.1): return correlations along the network's edges.

Local; no MPI. Every per-row sum runs in edge order, so the results do not
depend on the partition (a row is never split between ranks).
"""

from libc.stdint cimport int32_t, int64_t


def edge_correlations(const int64_t[::1] indptr, const int32_t[::1] indices,
                      const double[::1] dev, const double[::1] sd, double[::1] cov,
                      double lam, double[::1] row_sum):
    """Update each edge's return covariance and sum each row's correlations. Local.

    For the edge e = i -> j (j an owned or ghost slot of ``dev`` and ``sd``):

        cov[e] <- lam * cov[e] + (1 - lam) * (dev[i] * dev[j])

    (an exponentially weighted covariance of the two agents' returns, dev
    being each return's deviation from its running mean), and

        row_sum[i] = sum over the row, in edge order, of cov[e] / (sd[i] * sd[j])

    (the correlations w_ij; an edge with a zero standard deviation at
    either end adds nothing).
    """
    cdef Py_ssize_t i, e, j, n = indptr.shape[0] - 1
    cdef double c, den, acc
    with nogil:
        for i in range(n):
            acc = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                c = lam * cov[e] + (1.0 - lam) * (dev[i] * dev[j])
                cov[e] = c
                den = sd[i] * sd[j]
                if den > 0.0:
                    acc = acc + c / den
            row_sum[i] = acc
