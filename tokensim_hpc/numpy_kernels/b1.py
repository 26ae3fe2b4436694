"""Numpy twin of ``cython_kernels/b1.pyx`` (same arguments, same results).

Neighbour sums run slot by slot over the CSR rows, vectorised across rows:
edge slot e of a row goes to partial sum e % 4 in CSR order, and the row's
sum is (p0 + p1) + (p2 + p3), exactly as the Cython kernel adds.
"""

import numpy as np

from . import exactsum, rng
from .fastmath import tanh_exp

STREAM_SHOCK = 1


def _neighbour_sums(rows, indptr, indices, weights, uniform_weight, s_old):
    start = indptr[rows]
    degree = indptr[rows + 1] - start
    partial = np.zeros((4, rows.shape[0]))
    uniform = weights.shape[0] == 0
    for slot in range(int(degree.max()) if rows.size else 0):
        live = degree > slot
        edge = start[live] + slot
        term = s_old[indices[edge]] if uniform else weights[edge] * s_old[indices[edge]]
        p = partial[slot % 4]
        p[live] = p[live] + term
    sums = (partial[0] + partial[1]) + (partial[2] + partial[3])
    return uniform_weight * sums if uniform else sums


def sentiment_orders(rows, indptr, indices, weights, uniform_weight, s_old, s_new, gid,
                     shock_words, cash, tokens,
                     orders, price, momentum, w_self, w_neigh, w_mom, sigma,
                     order_fraction, seed, tick, acc_orders, acc_sentiment):
    """Numpy twin of ``b1.sentiment_orders``."""
    rows = np.asarray(rows, dtype=np.int64)
    n_i = _neighbour_sums(rows, indptr, indices, weights, uniform_weight, s_old)
    xi = np.zeros(rows.shape[0])
    if sigma != 0.0:
        rng.normal4(seed, gid[rows], tick, STREAM_SHOCK, 0,
                    np.ascontiguousarray(shock_words[:, rows].T), xi)
    drive = w_self * s_old[rows] + w_neigh * n_i + w_mom * momentum
    if sigma != 0.0:
        drive = drive + sigma * xi
    s = tanh_exp(drive)
    q = np.where(s > 0.0, order_fraction * s * cash[rows],
                 order_fraction * s * tokens[rows] * price)
    s_new[rows] = s
    orders[rows] = q
    exactsum.accumulate(q, acc_orders)
    exactsum.accumulate(s, acc_sentiment)


def execute_orders(cash, tokens, orders, price, acc_wealth):
    """Numpy twin of ``b1.execute_orders``."""
    n = orders.shape[0]
    c = np.maximum(cash[:n] - orders, 0.0)
    h = np.maximum(tokens[:n] + orders / price, 0.0)
    cash[:n] = c
    tokens[:n] = h
    exactsum.accumulate(c + h * price, acc_wealth)
