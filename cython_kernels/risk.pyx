# cython: language_level=3
"""Systemic-risk kernels (paper 6.1): return correlations along the network's edges.

Local; no MPI. Every per-row sum runs in edge order, so the results do not
depend on the partition (a row is never split between ranks).
"""

import numpy as np

from libc.float cimport DBL_MAX
from libc.math cimport fabs, sqrt
from libc.stdint cimport int32_t, int64_t

from _exactsum cimport acc_add_block_top
from _fastmath cimport prefetch_read

DEF BLOCK = 256
DEF PREFETCH_EDGES = 256  # how far ahead the edge kernel asks for its gathers
cdef double _SD_MIN = 1e-150  # smaller standard deviations count as none (1/sd stays finite)
SD_MIN = _SD_MIN


def edge_correlations(const int64_t[::1] indptr, const int32_t[::1] indices,
                      const double[:, ::1] dev_isd, double[::1] cov, double lam,
                      double[::1] row_sum, const double[::1] degree, double dbar,
                      int64_t[:, ::1] acc):
    """Update each edge's return covariance, sum each row's correlations, and add the
    rows' sums up exactly. Local.

    ``dev_isd[j] = (dev_j, 1 / sd_j)`` for every owned and ghost slot j (0
    for a zero standard deviation; side by side, so that a long-range edge
    costs one cache miss, not two). For the edge e = i -> j:

        cov[e] <- lam * cov[e] + ((1 - lam) * dev_i) * dev_j

    (an exponentially weighted covariance of the two agents' returns, dev
    being each return's deviation from its running mean), and

        row_sum[i] = w_i = (1/sd_i) * (sum over the row, in edge order, of
                                       cov[e] * (1/sd_j))

    (the correlations w_ij summed, by products rather than divisions, with
    the row's factors (1 - lam) dev_i and 1/sd_i taken out of the edge loop;
    a zero 1/sd, no measurable or an infinite variance, makes an edge's term
    c * 0 = 0, the terms being finite for the deviations ``agent_moments``
    gives, or the row's sum 0).
    Then, exactly, acc row 0 += sum_i w_i (d_i - dbar)^2 and acc
    row 1 += sum_i w_i, with d_i = degree[i] (staged a block of rows at a
    time: the same exact sums as one add each). An empty ``row_sum`` means
    the w_i themselves are not wanted (R_sys needs only the two sums).
    """
    cdef Py_ssize_t i, e, j, start, stop, n = indptr.shape[0] - 1, m = indptr[n]
    # Rows ending at or before pf_end prefetch PREFETCH_EDGES ahead inside the edge loop.
    cdef Py_ssize_t pf_end = m - PREFETCH_EDGES if m > PREFETCH_EDGES else 0
    cdef bint want_rows = row_sum.shape[0] > 0
    cdef double c, w, dd, dev_i, isd_i, top0, top1, v, a = 1.0 - lam
    cdef double buf0[BLOCK]
    cdef double buf1[BLOCK]
    cdef const double *pairs = &dev_isd[0, 0] if dev_isd.shape[0] else NULL
    cdef const int32_t *idx = &indices[0] if m else NULL
    cdef double *cv = &cov[0] if m else NULL
    if dev_isd.shape[1] != 2:
        raise ValueError(f"dev_isd must have 2 columns, not {dev_isd.shape[1]}")
    with nogil:
        for start in range(0, n, BLOCK):
            stop = start + BLOCK if start + BLOCK < n else n
            top0 = 0.0
            top1 = 0.0
            for i in range(start, stop):
                w = 0.0
                dev_i = a * pairs[2 * i]
                isd_i = pairs[2 * i + 1]
                # The same loop twice, with and without a prefetch: long-range edges
                # gather from anywhere in the slots and a miss stalls, so each edge asks
                # for the (dev, 1/sd) pair of the edge PREFETCH_EDGES ahead (one loop, not
                # a prefetch loop per row: half the loop overhead).
                if indptr[i + 1] <= pf_end:
                    for e in range(indptr[i], indptr[i + 1]):
                        prefetch_read(pairs + 2 * idx[e + PREFETCH_EDGES], 0, 3)
                        j = idx[e]
                        c = lam * cv[e] + dev_i * pairs[2 * j]
                        cv[e] = c
                        # No branch: a zero 1/sd makes the term c * 0 = 0 (c is finite:
                        # agent_moments sends a non-finite deviation as 0).
                        w = w + c * pairs[2 * j + 1]
                else:
                    for e in range(indptr[i], indptr[i + 1]):
                        j = idx[e]
                        c = lam * cv[e] + dev_i * pairs[2 * j]
                        cv[e] = c
                        w = w + c * pairs[2 * j + 1]
                w = w * isd_i if isd_i != 0.0 else 0.0  # (a select: never inf * 0)
                if want_rows:
                    row_sum[i] = w
                dd = degree[i] - dbar
                buf0[i - start] = w * (dd * dd)
                buf1[i - start] = w
                v = fabs(buf0[i - start])
                top0 = v if v > top0 else top0
                v = fabs(w)
                top1 = v if v > top1 else top1
            acc_add_block_top(&acc[0, 0], buf0, stop - start, top0)
            acc_add_block_top(&acc[1, 0], buf1, stop - start, top1)


def agent_moments(const double[:, ::1] holdings, const double[::1] slot_value,
                  double[::1] wealth_prev, double[::1] mean, double[::1] var, double lam,
                  double[:, ::1] dev_isd):
    """One sample of every owned agent's return and its running moments. Local.

    W_i = sum over slots, in slot order, of holdings[s, i] * slot_value[s]
    (a block of agents at a time, slot by slot: the holdings are read once,
    as streams); r_i = W_i / wealth_prev[i] - 1 (0 when wealth_prev[i] <= 0);
    then dev = r_i - mean[i], var[i] <- lam var[i] + (1 - lam) dev^2,
    mean[i] <- lam mean[i] + (1 - lam) r_i, wealth_prev[i] = W_i and
    dev_isd[i] = (dev, 1 / sqrt(var[i])), the first 0 when dev is not finite
    and the second 0 when sqrt(var[i]) is below SD_MIN (no measurable
    variance) or not finite, side by side for one halo
    exchange of pairs and the edge kernel.
    """
    cdef Py_ssize_t i, s, start, stop, n = holdings.shape[1], n_slots = holdings.shape[0]
    cdef double r, x, v, sd, w, wp, m, vr, q, a = 1.0 - lam
    cdef double buf[BLOCK]
    # Raw pointers: the per-agent loop has no branch and no possible aliasing left, so
    # the compiler makes it vector code (two agents' divisions and square roots at once).
    cdef double *pw = &wealth_prev[0] if n else NULL
    cdef double *pm = &mean[0] if n else NULL
    cdef double *pv = &var[0] if n else NULL
    cdef double *pd = &dev_isd[0, 0] if n else NULL
    if dev_isd.shape[1] != 2:
        raise ValueError(f"dev_isd must have 2 columns, not {dev_isd.shape[1]}")
    with nogil:
        for start in range(0, n, BLOCK):
            stop = start + BLOCK if start + BLOCK < n else n
            for i in range(start, stop):
                buf[i - start] = 0.0
            for s in range(n_slots):
                v = slot_value[s]
                for i in range(start, stop):
                    buf[i - start] = buf[i - start] + holdings[s, i] * v
            for i in range(start, stop):
                w = buf[i - start]
                wp = pw[i]
                q = w / wp  # computed either way (a select, not a branch)
                r = q - 1.0 if wp > 0.0 else 0.0
                pw[i] = w
                m = pm[i]
                x = r - m
                # A non-finite deviation (an overflowed return) goes out as 0: its agent's
                # 1/sd is 0 from now on, so its edges add nothing, and their products
                # stay finite.
                pd[2 * i] = x if fabs(x) <= DBL_MAX else 0.0
                vr = lam * pv[i] + a * (x * x)
                pv[i] = vr
                pm[i] = lam * m + a * r
                sd = sqrt(vr)
                q = 1.0 / sd
                pd[2 * i + 1] = q if sd >= _SD_MIN else 0.0


def in_ties(const int32_t[::1] indices, double[::1] ties):
    """ties[j] += 1 for every edge whose target is slot j (owned or ghost): each
    slot's number of incoming edges from this rank's rows. Local. (Counts below
    2**53 are exact in float64.)"""
    cdef Py_ssize_t e, m = indices.shape[0]
    with nogil:
        for e in range(m):
            ties[indices[e]] += 1.0


def transpose_sums(const double[::1] b, const int64_t[::1] index, const double[::1] coef,
                   const int64_t[::1] starts, const int64_t[::1] rows, double[::1] out):
    """Segment sums of products: for every segment s, the terms p from ``starts[s]`` to
    ``starts[s + 1]`` (the last one to the end of ``index``), each
    coef[p] * b[index[p]], added in segment order from the first term
    (((t0 + t1) + t2) + ...), into out[rows[s]]. The other entries of ``out`` are
    left as they are. Local. (The sums of :class:`ExactTranspose`'s products:
    one pass, no array of terms.)

    Every segment must hold at least one term: ``starts`` strictly increasing
    and below the number of terms.
    """
    cdef Py_ssize_t s, p, end, m = index.shape[0], k = starts.shape[0]
    cdef double acc
    if coef.shape[0] != m or rows.shape[0] != k:
        raise ValueError("transpose_sums: coef must match index and rows must match starts")
    for s in range(k):
        end = starts[s + 1] if s + 1 < k else m
        if starts[s] >= end or starts[s] < 0:
            raise ValueError("transpose_sums: every segment needs a term (starts strictly "
                             "increasing, below the number of terms)")
        if rows[s] < 0 or rows[s] >= out.shape[0]:
            raise ValueError(f"transpose_sums: row {rows[s]} outside out")
    for p in range(m):
        if index[p] < 0 or index[p] >= b.shape[0]:
            raise ValueError(f"transpose_sums: index {index[p]} outside b")
    with nogil:
        for s in range(k):
            end = starts[s + 1] if s + 1 < k else m
            p = starts[s]
            acc = coef[p] * b[index[p]]
            for p in range(starts[s] + 1, end):
                acc = acc + coef[p] * b[index[p]]
            out[rows[s]] = acc


cdef inline void _sift_down(int64_t *order, const int64_t *key, Py_ssize_t root,
                            Py_ssize_t size) noexcept nogil:
    """Heap of ``order`` by key (largest on top): move order[root] down into place."""
    cdef Py_ssize_t child
    cdef int64_t top = order[root]
    while 2 * root + 1 < size:
        child = 2 * root + 1
        if child + 1 < size and key[order[child + 1]] > key[order[child]]:
            child += 1
        if key[order[child]] <= key[top]:
            break
        order[root] = order[child]
        root = child
    order[root] = top


cdef inline void _sort_by_key(int64_t *order, const int64_t *key,
                              Py_ssize_t size) noexcept nogil:
    """Sort ``order`` (term numbers) by their unique keys, ascending: insertion for the
    short runs transposed products have, heapsort beyond (no quadratic case)."""
    cdef Py_ssize_t i, j
    cdef int64_t t
    if size <= 32:
        for i in range(1, size):
            t = order[i]
            j = i
            while j > 0 and key[order[j - 1]] > key[t]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = t
        return
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(order, key, i, size)
    for i in range(size - 1, 0, -1):
        t = order[0]
        order[0] = order[i]
        order[i] = t
        _sift_down(order, key, 0, i)


def transpose_order(int64_t n, const int64_t[::1] target, const int64_t[::1] key):
    """The order of a transposed product's terms: (order, rows, starts). Local.

    ``order`` lists the terms (indices into ``target`` and ``key``) by target,
    then by key (the keys must be unique): what ``numpy.lexsort((key, target))``
    gives. ``rows`` are the targets that have terms, ascending, and ``starts``
    where each one's terms begin in ``order``. Targets must be in [0, n).

    A counting sort by target (one pass to count, one to place) and a sort of
    each target's few terms by key, instead of a sort of all of them.
    """
    cdef Py_ssize_t m = target.shape[0], i, r
    cdef int64_t t
    if key.shape[0] != m:
        raise ValueError("transpose_order: target and key must have the same length")
    if n < 0:
        raise ValueError(f"transpose_order: n must be >= 0, got {n}")
    counts_arr = np.zeros(n + 1, dtype=np.int64)
    cdef int64_t[::1] counts = counts_arr
    for i in range(m):
        if target[i] < 0 or target[i] >= n:
            raise ValueError(f"transpose_order: target {target[i]} outside [0, {n})")
    order_arr = np.empty(m, dtype=np.int64)
    cdef int64_t[::1] order = order_arr
    cdef Py_ssize_t n_rows = 0
    with nogil:
        for i in range(m):
            counts[target[i] + 1] += 1
        for r in range(n):
            if counts[r + 1]:
                n_rows += 1
            counts[r + 1] += counts[r]
    rows_arr = np.empty(n_rows, dtype=np.int64)
    starts_arr = np.empty(n_rows, dtype=np.int64)
    cdef int64_t[::1] rows = rows_arr
    cdef int64_t[::1] starts = starts_arr
    with nogil:
        # counts[r] is now where target r's terms begin; place the terms (stably), then
        # sort each target's terms by key.
        i = 0
        for r in range(n):
            if counts[r + 1] > counts[r]:
                rows[i] = r
                starts[i] = counts[r]
                i += 1
        for i in range(m):
            t = target[i]
            order[counts[t]] = i
            counts[t] += 1
        # (counts[r] is now where target r's terms end.)
        for i in range(n_rows):
            r = rows[i]
            if counts[r] - starts[i] > 1:
                _sort_by_key(&order[starts[i]], &key[0], counts[r] - starts[i])
    return order_arr, rows_arr, starts_arr
