# cython: language_level=3
"""Step kernels of the benchmark model B1 (shared/benchmark-B1.md).

A tick is split in two kernels around the one global reduction:
``sentiment_orders`` (spec steps 1-4, run on interior rows while the halo
exchange is in flight, then on boundary rows) and ``execute_orders``
(spec step 7, after the pool has cleared the net flow). Both add their
contributions to exact accumulators, so the reduced sums do not depend on
how agents are split over ranks.

Rows go in blocks: the values to be summed are staged in small stack
buffers and added to the accumulators after each block. Adding inside the
main loop would interleave integer stores into the accumulator with the
double loads, which (the memoryviews may alias) forces the compiler to
reload everything each iteration; staging halves the kernel's time.
"""

from libc.math cimport fabs
from libc.stdint cimport int32_t, int64_t, uint64_t

from _exactsum cimport acc_add_block, acc_add_block_top
from _fastmath cimport prefetch_read, select_positive, tanh_block
from _network cimport neighbour_sum, weighted_neighbour_sum
from _philox cimport philox_normal4

# Random stream of B1's sentiment shock xi (counter-based: seed, gid, tick, stream);
# the model refreshes the cached blocks with this module's STREAM_SHOCK.
cdef enum:
    _STREAM_SHOCK = 1
STREAM_SHOCK = _STREAM_SHOCK
DEF BLOCK = 256
DEF GID_AHEAD = 64  # rows ahead that the shock loop asks for an id


def sentiment_orders(const int64_t[::1] rows, const int64_t[::1] indptr,
                     const int32_t[::1] indices, const double[::1] weights,
                     double uniform_weight,
                     const double[::1] s_old, double[::1] s_new, const int64_t[::1] gid,
                     const uint64_t[:, ::1] shock_words,
                     const double[::1] cash, const double[::1] tokens, double[::1] orders,
                     double price, double momentum, double w_self, double w_neigh,
                     double w_mom, double sigma, double order_fraction,
                     uint64_t seed, uint64_t tick,
                     int64_t[::1] acc_orders, int64_t[::1] acc_sentiment):
    """New sentiment and order of each agent in ``rows`` (spec steps 1-4).

    Local, no communication. ``s_old`` holds owned and ghost slots (ghosts
    filled by the halo exchange); neighbour sums run in CSR edge order, in
    four interleaved partial sums (see ``_network.pxd``).
    ``shock_words`` (shape (4, n), one column per owned agent) holds the
    Philox blocks that the shocks of ticks tick & ~3 .. tick | 3 share:
    ``rng.random_raw_lanes(seed, gid, tick >> 2, STREAM_SHOCK, 0,
    shock_words)``, refreshed by the caller every fourth tick
    (``philox_normal4``); lane-major, so a tick reads 8 bytes per agent. It
    is not read when sigma = 0.
    An empty ``weights`` means every edge weighs ``uniform_weight``: then
    n_i = uniform_weight * sum_j s_j, which for a power-of-two 1/k (B1's
    k = 8) is bit for bit sum_j w s_j, without streaming a weight per edge.
    ``acc_orders`` and ``acc_sentiment`` receive sum q_i and sum s_i.
    """
    cdef Py_ssize_t start, stop, r, i, n_rows = rows.shape[0]
    cdef double n_i, s, q, drive, a, q_top, s_top
    cdef double xi_buf[BLOCK]
    cdef double q_buf[BLOCK]
    cdef double s_buf[BLOCK]
    cdef double bias = w_mom * momentum
    cdef bint uniform = weights.shape[0] == 0
    cdef Py_ssize_t lane = tick & 3
    with nogil:
        for start in range(0, n_rows, BLOCK):
            stop = min(start + BLOCK, n_rows)
            if sigma != 0.0:
                # The block's shocks first, in a loop of independent Philox
                # calls that the CPU overlaps (inside the main loop it cannot).
                for r in range(start, stop):
                    # The id is read only when the ziggurat rejects the cached word (about 1
                    # draw in 80), and then it is a cache miss that stalls: ask for it ahead.
                    if r + GID_AHEAD < n_rows:
                        prefetch_read(&gid[rows[r + GID_AHEAD]], 0, 3)
                    i = rows[r]
                    xi_buf[r - start] = philox_normal4(shock_words[lane, i], seed,
                                                       <uint64_t>gid[i], tick, _STREAM_SHOCK, 0)
            # The block's drives, then their tanh in a loop of its own (vector code:
            # independent divisions), then the orders.
            for r in range(start, stop):
                i = rows[r]
                if uniform:
                    n_i = uniform_weight * neighbour_sum(indptr[i], indptr[i + 1],
                                                         indices, s_old)
                else:
                    n_i = weighted_neighbour_sum(indptr[i], indptr[i + 1], indices,
                                                 weights, s_old)
                drive = w_self * s_old[i] + w_neigh * n_i + bias
                if sigma != 0.0:
                    drive = drive + sigma * xi_buf[r - start]
                s_buf[r - start] = drive
            tanh_block(&s_buf[0], stop - start)
            q_top = 0.0
            s_top = 0.0
            for r in range(start, stop):
                i = rows[r]
                s = s_buf[r - start]
                s_new[i] = s
                # Buy with a fraction of cash, sell a fraction of token value.
                q = order_fraction * s * select_positive(s, cash[i], tokens[i] * price)
                orders[i] = q
                q_buf[r - start] = q
                # Block maxima of |q| and |s| for the exact sums (NaNs skipped).
                a = fabs(q)
                q_top = a if a > q_top else q_top
                a = fabs(s)
                s_top = a if a > s_top else s_top
            acc_add_block_top(&acc_orders[0], q_buf, stop - start, q_top)
            acc_add_block_top(&acc_sentiment[0], s_buf, stop - start, s_top)


def execute_orders(double[::1] cash, double[::1] tokens, const double[::1] orders,
                   double price, int64_t[::1] acc_wealth):
    """Fill every owned agent's order at the cleared price (spec step 7).

    ``acc_wealth`` receives sum (c_i + h_i P) after the fills.
    """
    cdef Py_ssize_t start, stop, i, n = orders.shape[0]
    cdef double c, h
    cdef double w_buf[BLOCK]
    with nogil:
        for start in range(0, n, BLOCK):
            stop = min(start + BLOCK, n)
            # No running maximum here (a conditional reduction keeps the loop scalar):
            # acc_add_block finds the block's top itself.
            for i in range(start, stop):
                c = cash[i] - orders[i]
                h = tokens[i] + orders[i] / price
                c = 0.0 if c < 0.0 else c  # (a NaN or -0.0 stays as it is)
                h = 0.0 if h < 0.0 else h
                cash[i] = c
                tokens[i] = h
                w_buf[i - start] = c + h * price
            acc_add_block(&acc_wealth[0], w_buf, stop - start)
