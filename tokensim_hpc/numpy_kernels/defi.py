"""Numpy twin of ``cython_kernels/defi.pyx`` (same arguments, same results).

Every floating-point expression is evaluated in the Cython kernel's order
(left to right), neighbour sums in the same four partial sums, and exact
sums are order-independent, so both backends give bit-identical results.
"""

import numpy as np

from . import exactsum, rng
from .b1 import _neighbour_sums
from .fastmath import tanh_exp

STREAM_TRADER = 3
TYPE_NOISE = 0
TYPE_HERDING = 1
TYPE_FUNDAMENTALIST = 2
N_TYPES = 3


def trader_orders(rows, indptr, indices, uniform_weight, s_old, s_new, gid, kind, pool,
                  fraction, gain, holdings, base_slot, quote_slot, momentum, mispricing, gas,
                  min_value, price, w_self, w_neigh, w_mom, sigma, noise_sigma, seed, tick,
                  buy, sell, acc_flow, n_orders, acc_sentiment):
    """Numpy twin of ``defi.trader_orders``."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return
    p = pool[rows].astype(np.int64)
    k = kind[rows].astype(np.int64)
    xi = np.empty(rows.size)
    rng.normal(seed, gid[rows], tick, STREAM_TRADER, 0, xi)
    n_i = _neighbour_sums(rows, indptr, indices, np.empty(0), 1.0, s_old)
    herd = (((w_self * s_old[rows] + w_neigh * (uniform_weight * n_i)) + w_mom * momentum[p])
            + sigma * xi)
    fund = gain[rows] * mispricing[p] + sigma * xi
    drive = np.where(k == TYPE_HERDING, herd,
                     np.where(k == TYPE_FUNDAMENTALIST, fund, noise_sigma * xi))
    sig = tanh_exp(drive)
    s_new[rows] = sig
    exactsum.accumulate_grouped(sig, k, acc_sentiment)
    q_hold = holdings[quote_slot[p], rows]
    b_hold = holdings[base_slot[p], rows]
    g, lo = gas[p], min_value[p]
    amount_buy = np.minimum(fraction[rows] * sig * q_hold, q_hold - g)
    is_buy = (sig > 0.0) & (amount_buy >= lo) & (amount_buy > 0.0)
    amount_sell = fraction[rows] * (-sig) * b_hold
    is_sell = ((sig < 0.0) & (q_hold >= g) & (amount_sell * price[p] >= lo)
               & (amount_sell > 0.0))
    buy[rows] = np.where(is_buy, amount_buy, 0.0)
    sell[rows] = np.where(is_sell, amount_sell, 0.0)
    exactsum.accumulate_grouped(amount_buy[is_buy], 2 * p[is_buy], acc_flow)
    exactsum.accumulate_grouped(amount_sell[is_sell], 2 * p[is_sell] + 1, acc_flow)
    n_orders += np.bincount(p[is_buy | is_sell], minlength=n_orders.shape[0])


def fill_orders(kind, pool, buy, sell, base_slot, quote_slot, clearing, gas, holdings,
                acc_holdings):
    """Numpy twin of ``defi.fill_orders``."""
    n = buy.shape[0]
    if n == 0:
        return
    idx = np.arange(n)
    p = pool.astype(np.int64)
    qs, bs = quote_slot[p], base_slot[p]
    b, s = buy > 0.0, (buy <= 0.0) & (sell > 0.0)
    trade = b | s
    old_b, old_q = holdings[bs, idx], holdings[qs, idx]
    new_b = np.where(b, old_b + buy / clearing[p], old_b - sell)
    new_q = np.where(b, old_q - (buy + gas[p]), old_q + (sell * clearing[p] - gas[p]))
    holdings[bs[trade], idx[trade]] = new_b[trade]
    holdings[qs[trade], idx[trade]] = new_q[trade]
    row = kind.astype(np.int64) * holdings.shape[0]
    for slot, new, old in ((bs, new_b, old_b), (qs, new_q, old_q)):
        values = np.concatenate((new[trade], -old[trade]))
        exactsum.accumulate_grouped(values, np.tile(row[trade] + slot[trade], 2), acc_holdings)
