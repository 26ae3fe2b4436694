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
TYPE_ARBITRAGEUR = 3
TYPE_LIQUIDITY = 4
TYPE_PAYMENT = 5
TYPE_BORROWER = 6
TYPE_PORTFOLIO = 7
N_TYPES = 8
STREAM_PORTFOLIO = 6


def trader_orders(rows, indptr, indices, uniform_weight, s_old, s_new, gid, shock_words,
                  kind, pool,
                  fraction, gain, pair, arb_weight, holdings, base_slot, quote_slot, momentum,
                  mispricing, gas, min_value, price, fee, reserve_base, pair_pools, pair_cost,
                  w_self, w_neigh, w_mom, sigma, noise_sigma, seed, tick, buy, sell, buy_pool,
                  sell_pool, acc_flow, n_orders, acc_sentiment):
    """Numpy twin of ``defi.trader_orders``."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return
    p = pool[rows].astype(np.int64)
    k = kind[rows].astype(np.int64)
    buy[rows] = 0.0
    sell[rows] = 0.0
    buy_pool[rows] = p
    sell_pool[rows] = p
    arb = k == TYPE_ARBITRAGEUR
    _arbitrage(rows[arb], pair, arb_weight, holdings, base_slot, quote_slot, gas, min_value,
               price, fee, reserve_base, pair_pools, pair_cost, buy, sell, buy_pool, sell_pool,
               acc_flow, n_orders)
    s_new[rows[arb]] = 0.0
    lp = k >= TYPE_LIQUIDITY  # liquidity providers, payment users, borrowers, portfolios
    s_new[rows[lp]] = 0.0
    trader = ~arb & ~lp
    rows, p, k = rows[trader], p[trader], k[trader]
    xi = np.empty(rows.size)
    rng.normal4(seed, gid[rows], tick, STREAM_TRADER, 0,
                np.ascontiguousarray(shock_words[:, rows].T), xi)
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


def _arbitrage(rows, pair, arb_weight, holdings, base_slot, quote_slot, gas, min_value, price,
               fee, reserve_base, pair_pools, pair_cost, buy, sell, buy_pool, sell_pool,
               acc_flow, n_orders):
    if rows.size == 0:
        return
    pr = pair[rows].astype(np.int64)
    a, b = pair_pools[pr, 0], pair_pools[pr, 1]
    swap = price[b] < price[a]
    c, d = np.where(swap, b, a), np.where(swap, a, b)
    spread = price[d] * (1.0 - fee[d]) * (1.0 - pair_cost[pr]) - price[c] / (1.0 - fee[c])
    kappa = price[c] / reserve_base[c] + price[d] / reserve_base[d]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = arb_weight[rows] * spread / (2.0 * kappa)
    alpha = np.minimum(alpha, (holdings[quote_slot[c], rows] - gas[c]) / price[c])
    alpha = np.minimum(alpha, holdings[base_slot[d], rows])
    ok = ((spread > 0.0) & (alpha > 0.0) & ~(0.5 * alpha * spread < gas[c] + gas[d])
          & ~(holdings[quote_slot[d], rows] < gas[d]) & ~(alpha * price[c] < min_value[c])
          & ~(alpha * price[d] < min_value[d]))
    rows, c, d, alpha = rows[ok], c[ok], d[ok], alpha[ok]
    buy[rows] = alpha * price[c]
    buy_pool[rows] = c
    sell[rows] = alpha
    sell_pool[rows] = d
    exactsum.accumulate_grouped(alpha * price[c], 2 * c, acc_flow)
    exactsum.accumulate_grouped(alpha, 2 * d + 1, acc_flow)
    n_orders += np.bincount(c, minlength=n_orders.shape[0])
    n_orders += np.bincount(d, minlength=n_orders.shape[0])


def fill_orders(kind, buy_pool, sell_pool, buy, sell, base_slot, quote_slot, clearing, gas,
                holdings, acc_holdings):
    """Numpy twin of ``defi.fill_orders`` (buys first, then sells, as each agent does)."""
    n = buy.shape[0]
    if n == 0:
        return
    row = kind.astype(np.int64) * holdings.shape[0]
    b = np.flatnonzero(buy > 0.0)
    bp = buy_pool[b].astype(np.int64)
    _move(holdings, acc_holdings, row[b], b, base_slot[bp], buy[b] / clearing[bp],
          quote_slot[bp], -(buy[b] + gas[bp]))
    s = np.flatnonzero(sell > 0.0)
    sp = sell_pool[s].astype(np.int64)
    _move(holdings, acc_holdings, row[s], s, base_slot[sp], -sell[s], quote_slot[sp],
          sell[s] * clearing[sp] - gas[sp])


def _move(holdings, acc, row, idx, bs, db, qs, dq):
    old_b, old_q = holdings[bs, idx], holdings[qs, idx]
    holdings[bs, idx] = old_b + db
    holdings[qs, idx] = old_q + dq
    for slot, new, old in ((bs, old_b + db, old_b), (qs, old_q + dq, old_q)):
        exactsum.accumulate_grouped(np.concatenate((new, -old)), np.tile(row + slot, 2), acc)


def portfolio_orders(agents, gid, kind, pool, target, risk_aversion, holdings, base_slot,
                     quote_slot, price, fee, gas, min_value, drift, vol, cost, seed, tick, buy,
                     sell, acc_flow, n_orders, acc_holdings, acc_minted):
    """Numpy twin of ``defi.portfolio_orders``."""
    agents = np.asarray(agents, dtype=np.int64)
    if agents.size == 0:
        return
    p = pool[agents].astype(np.int64)
    b, q = base_slot[p], quote_slot[p]
    row = kind[agents].astype(np.int64) * holdings.shape[0]
    xi = np.empty(agents.size)
    for draw, slot in ((0, b), (1, q)):
        rng.normal(seed, gid[agents], tick, STREAM_PORTFOLIO, draw, xi)
        old = holdings[slot, agents]
        new = np.maximum(old * (1.0 + drift + vol * xi), 0.0)
        holdings[slot, agents] = new
        both = np.concatenate((new, -old))
        exactsum.accumulate_grouped(both, np.tile(row + slot, 2), acc_holdings)
        exactsum.accumulate_grouped(both, np.tile(slot, 2), acc_minted)
    buy[agents] = 0.0
    sell[agents] = 0.0
    hb, hq, P = holdings[b, agents], holdings[q, agents], price[p]
    wealth = hb * P + hq
    with np.errstate(divide="ignore", invalid="ignore"):
        w = hb * P / wealth
    band = (fee[p] + cost) / risk_aversion[agents]
    tgt, g, lo = target[agents], gas[p], min_value[p]
    live = wealth > 0.0
    amount_buy = np.minimum((tgt - band - w) * wealth, hq - g)
    is_buy = live & (w < tgt - band) & (amount_buy >= lo) & (amount_buy > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        amount_sell = (w - tgt - band) * wealth / P
    is_sell = (live & ~(w < tgt - band) & (w > tgt + band) & (hq >= g)
               & (amount_sell * P >= lo) & (amount_sell > 0.0))
    buy[agents[is_buy]] = amount_buy[is_buy]
    sell[agents[is_sell]] = amount_sell[is_sell]
    exactsum.accumulate_grouped(amount_buy[is_buy], 2 * p[is_buy], acc_flow)
    exactsum.accumulate_grouped(amount_sell[is_sell], 2 * p[is_sell] + 1, acc_flow)
    n_orders += np.bincount(p[is_buy | is_sell], minlength=n_orders.shape[0])
