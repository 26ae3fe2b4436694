# cython: language_level=3
"""Systemic-risk kernels (paper 6.1): return correlations along the network's edges.

Local; no MPI. Every per-row sum runs in edge order, so the results do not
depend on the partition (a row is never split between ranks).
"""

from libc.math cimport fabs, sqrt
from libc.stdint cimport int32_t, int64_t

from _exactsum cimport acc_add_block_top

DEF BLOCK = 256
cdef double _SD_MIN = 1e-150  # smaller standard deviations count as none (1/sd stays finite)
SD_MIN = _SD_MIN


def edge_correlations(const int64_t[::1] indptr, const int32_t[::1] indices,
                      const double[:, ::1] dev_isd, double[::1] cov, double lam,
                      double[::1] row_sum):
    """Update each edge's return covariance and sum each row's correlations. Local.

    ``dev_isd[j] = (dev_j, 1 / sd_j)`` for every owned and ghost slot j (0
    for a zero standard deviation; side by side, so that a long-range edge
    costs one cache miss, not two). For the edge e = i -> j:

        cov[e] <- lam * cov[e] + (1 - lam) * (dev_i * dev_j)

    (an exponentially weighted covariance of the two agents' returns, dev
    being each return's deviation from its running mean), and

        row_sum[i] = sum over the row, in edge order, of cov[e] * ((1/sd_i) * (1/sd_j))

    (the correlations w_ij, by products rather than divisions; an edge with
    a zero standard deviation at either end adds nothing).
    """
    cdef Py_ssize_t i, e, j, n = indptr.shape[0] - 1
    cdef double c, scale, acc, dev_i, isd_i
    with nogil:
        for i in range(n):
            acc = 0.0
            dev_i = dev_isd[i, 0]
            isd_i = dev_isd[i, 1]
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                c = lam * cov[e] + (1.0 - lam) * (dev_i * dev_isd[j, 0])
                cov[e] = c
                scale = isd_i * dev_isd[j, 1]
                if scale > 0.0:
                    acc = acc + c * scale
            row_sum[i] = acc


def agent_moments(const double[:, ::1] holdings, const double[::1] slot_value,
                  double[::1] wealth_prev, double[::1] mean, double[::1] var, double lam,
                  double[:, ::1] dev_isd):
    """One sample of every owned agent's return and its running moments. Local.

    W_i = sum over slots, in slot order, of holdings[s, i] * slot_value[s]
    (slot by slot over all agents: streaming, the same sum);
    r_i = W_i / wealth_prev[i] - 1 (0 when wealth_prev[i] <= 0); then
    dev = r_i - mean[i], var[i] <- lam var[i] + (1 - lam) dev^2,
    mean[i] <- lam mean[i] + (1 - lam) r_i, wealth_prev[i] = W_i and
    dev_isd[i] = (dev, 1 / sqrt(var[i])), the second 0 when sqrt(var[i]) is
    below SD_MIN (no measurable variance), side by side for one halo
    exchange of pairs and the edge kernel.
    """
    cdef Py_ssize_t i, s, n = holdings.shape[1], n_slots = holdings.shape[0]
    cdef double r, x, v, sd
    with nogil:
        for s in range(n_slots):  # the wealth, accumulated in dev_isd[:, 0]
            v = slot_value[s]
            for i in range(n):
                dev_isd[i, 0] = (0.0 if s == 0 else dev_isd[i, 0]) + holdings[s, i] * v
        for i in range(n):
            r = dev_isd[i, 0] / wealth_prev[i] - 1.0 if wealth_prev[i] > 0.0 else 0.0
            wealth_prev[i] = dev_isd[i, 0]
            x = r - mean[i]
            dev_isd[i, 0] = x
            var[i] = lam * var[i] + (1.0 - lam) * (x * x)
            mean[i] = lam * mean[i] + (1.0 - lam) * r
            sd = sqrt(var[i])
            dev_isd[i, 1] = 1.0 / sd if sd >= _SD_MIN else 0.0


def risk_sums(const double[::1] degree, const double[::1] row_w, int64_t[:, ::1] acc):
    """Exact sums of d, d^2, w d^2, w d and w over the owned agents (acc rows 0-4),
    with d = degree[i] and w = row_w[i]. Local."""
    cdef Py_ssize_t start, stop, i, k, n = degree.shape[0]
    cdef double buf[5][BLOCK]
    cdef double top[5]
    cdef double d, w, v
    with nogil:
        for start in range(0, n, BLOCK):
            stop = start + BLOCK if start + BLOCK < n else n
            for k in range(5):
                top[k] = 0.0
            for i in range(start, stop):
                d = degree[i]
                w = row_w[i]
                buf[0][i - start] = d
                buf[1][i - start] = d * d
                buf[2][i - start] = w * (d * d)
                buf[3][i - start] = w * d
                buf[4][i - start] = w
                for k in range(5):
                    v = fabs(buf[k][i - start])
                    top[k] = v if v > top[k] else top[k]
            for k in range(5):
                acc_add_block_top(&acc[k, 0], buf[k], stop - start, top[k])
