# cython: language_level=3
"""Step kernels of the benchmark model B1 (shared/benchmark-B1.md).

A tick is split in two kernels around the one global reduction:
``sentiment_orders`` (spec steps 1-4, run on interior rows while the halo
exchange is in flight, then on boundary rows) and ``execute_orders``
(spec step 7, after the pool has cleared the net flow). Both add their
contributions to exact accumulators, so the reduced sums do not depend on
how agents are split over ranks.
"""

from libc.math cimport tanh
from libc.stdint cimport int32_t, int64_t, uint64_t

from _exactsum cimport acc_add
from _philox cimport philox_normal

# Random stream of B1's sentiment shock xi (counter-based: seed, gid, tick, stream).
DEF STREAM_SHOCK = 1


def sentiment_orders(const int64_t[:] rows, const int64_t[:] indptr,
                     const int32_t[:] indices, const double[:] weights,
                     const double[:] s_old, double[:] s_new, const int64_t[:] gid,
                     const double[:] cash, const double[:] tokens, double[:] orders,
                     double price, double momentum, double w_self, double w_neigh,
                     double w_mom, double sigma, double order_fraction,
                     uint64_t seed, uint64_t tick,
                     int64_t[::1] acc_orders, int64_t[::1] acc_sentiment):
    """New sentiment and order of each agent in ``rows`` (spec steps 1-4).

    Local, no communication. ``s_old`` holds owned and ghost slots (ghosts
    filled by the halo exchange); neighbour sums run in CSR edge order.
    ``acc_orders`` and ``acc_sentiment`` receive sum q_i and sum s_i.
    """
    cdef Py_ssize_t r, i, e
    cdef double n_i, s, xi, q
    with nogil:
        for r in range(rows.shape[0]):
            i = rows[r]
            n_i = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                n_i = n_i + weights[e] * s_old[indices[e]]
            xi = 0.0
            if sigma != 0.0:
                xi = philox_normal(seed, <uint64_t>gid[i], tick, STREAM_SHOCK, 0)
            s = tanh(w_self * s_old[i] + w_neigh * n_i + w_mom * momentum + sigma * xi)
            s_new[i] = s
            if s > 0.0:
                q = order_fraction * s * cash[i]
            else:
                q = order_fraction * s * tokens[i] * price
            orders[i] = q
            acc_add(&acc_orders[0], q)
            acc_add(&acc_sentiment[0], s)


def execute_orders(double[:] cash, double[:] tokens, const double[:] orders,
                   double price, int64_t[::1] acc_wealth):
    """Fill every owned agent's order at the cleared price (spec step 7).

    ``acc_wealth`` receives sum (c_i + h_i P) after the fills.
    """
    cdef Py_ssize_t i, n = orders.shape[0]
    cdef double c, h
    with nogil:
        for i in range(n):
            c = cash[i] - orders[i]
            h = tokens[i] + orders[i] / price
            if c < 0.0:
                c = 0.0
            if h < 0.0:
                h = 0.0
            cash[i] = c
            tokens[i] = h
            acc_add(&acc_wealth[0], c + h * price)
