# cython: language_level=3
"""Step kernels of the tokenized economy's traders (``run.model = "defi"``).

A tick is split around the one reduction of order flow: ``trader_orders``
(every agent's signal by its type, then its order in its home pool; run on
interior rows while the halo exchange of sentiment is in flight, then on
boundary rows) and ``fill_orders`` (every order filled at its pool's clearing
price, gas burned, the running exact totals of holdings per type and slot
updated by the changes). All sums
go to exact accumulators, so the reduced totals and therefore the pools
do not depend on how agents are split over ranks.

Agent types (``TYPE_*``): noise traders trade on their own shock; herding
traders on their own and their neighbours' sentiment and the pool's
momentum (as in B1); fundamentalists toward the oracle price; arbitrageurs
across the two pools of their pair, on two chains. Holdings are
a (slots, agents) array: row ``s`` is every agent's amount of slot s.
"""

from libc.math cimport fabs
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

from _exactsum cimport (NACC, AccStage, acc_add, acc_add_block_top, stage_add_diff,
                        stage_close, stage_open)
from _fastmath cimport prefetch_read, tanh_block
from _network cimport neighbour_sum
from _philox cimport philox_normal, philox_normal4

DEF PREFETCH_ROWS = 32  # how far ahead (in rows) the kernels ask for an agent's data
DEF SENTIMENT_BLOCK = 256  # sentiments staged per type before their exact block sum
DEF SIGNAL_BLOCK = 128  # rows whose signals are computed together (their tanh in one loop)

cdef enum:
    _STREAM_TRADER = 3
    _NOISE = 0
    _HERDING = 1
    _FUNDAMENTALIST = 2
    _ARBITRAGEUR = 3
    _LIQUIDITY = 4
    _PAYMENT = 5
    _BORROWER = 6
    _PORTFOLIO = 7
    _N_TYPES = 8
    _STREAM_PORTFOLIO = 6
STREAM_TRADER = _STREAM_TRADER
TYPE_NOISE = _NOISE
TYPE_HERDING = _HERDING
TYPE_FUNDAMENTALIST = _FUNDAMENTALIST
TYPE_ARBITRAGEUR = _ARBITRAGEUR
TYPE_LIQUIDITY = _LIQUIDITY
TYPE_PAYMENT = _PAYMENT
TYPE_BORROWER = _BORROWER
TYPE_PORTFOLIO = _PORTFOLIO
N_TYPES = _N_TYPES
STREAM_PORTFOLIO = _STREAM_PORTFOLIO


def trader_orders(const int64_t[::1] rows, const int64_t[::1] indptr,
                  const int32_t[::1] indices, double uniform_weight,
                  const double[::1] s_old, double[::1] s_new, const int64_t[::1] gid,
                  const uint64_t[:, ::1] shock_words,
                  const int8_t[::1] kind, const int32_t[::1] pool,
                  const double[::1] fraction, const double[::1] gain,
                  const int32_t[::1] pair, const double[::1] arb_weight,
                  const double[:, ::1] holdings,
                  const int64_t[::1] base_slot, const int64_t[::1] quote_slot,
                  const double[::1] momentum, const double[::1] mispricing,
                  const double[::1] gas, const double[::1] min_value,
                  const double[::1] price, const double[::1] fee,
                  const double[::1] reserve_base,
                  const int64_t[:, ::1] pair_pools, const double[::1] pair_cost,
                  double w_self, double w_neigh, double w_mom, double sigma,
                  double noise_sigma, uint64_t seed, uint64_t tick,
                  double[::1] buy, double[::1] sell,
                  int32_t[::1] buy_pool, int32_t[::1] sell_pool,
                  int64_t[:, ::1] acc_flow, int64_t[::1] n_orders,
                  int64_t[:, ::1] acc_sentiment):
    """Signal, sentiment and orders of each agent in ``rows``. Local.

    Per agent i with home pool p = pool[i] (base slot b, quote slot q, price
    P, gas g = gas[p]): one N(0, 1) shock xi (stream STREAM_TRADER, draw 0,
    four ticks to a Philox block: ``shock_words`` (4, n) holds
    ``rng.random_raw_lanes(seed, gid, tick >> 2, STREAM_TRADER, 0, ...)``,
    refreshed by the caller every fourth tick, as in B1), then the signal

    * noise: sig = tanh(noise_sigma * xi);
    * herding: sig = tanh(w_self s_i + w_neigh n_i + w_mom momentum[p] + sigma xi),
      n_i = uniform_weight * (neighbour sum of s, four partial sums);
    * fundamentalist: sig = tanh(gain_i * mispricing[p] + sigma xi), with
      mispricing = ln(oracle / price) of the pool;
    * arbitrageur: sig = 0, and the arbitrage below;
    * liquidity provider, payment user, borrower, portfolio manager: sig = 0
      and no order here (``portfolio_orders`` places the portfolios' orders).

    s_new[i] = sig. A buy spends fraction_i * sig of the quote holding (at
    most the holding less the gas), a sell offers fraction_i * |sig| of the
    base holding (if the quote holding pays the gas); an order worth less
    than min_value[p] (in quote, at P) is not placed.

    An arbitrageur watches the two pools of its pair (same base and quote
    tokens on two chains): it buys alpha base in the cheaper pool c and sells
    alpha in the dearer pool d in the same tick (paper 4.1: alpha maximises
    alpha * spread - C(alpha)). spread = P_d (1 - f_d)(1 - cost) - P_c / (1 - f_c)
    with cost the bridge fee of moving the inventory back; C(alpha) =
    kappa alpha^2 + gas with kappa = P_c / x_c + P_d / x_d (the pools' price
    impact), so alpha* = spread / (2 kappa), shared among the pair's
    arbitrageurs by arb_weight (their weights sum to 1). It trades only if
    its share of the profit, alpha spread / 2, pays both gas fees, and no
    more than its quote on chain c and its base on chain d allow.

    buy[i] (quote, in pool buy_pool[i]) and sell[i] (base, in sell_pool[i])
    receive the orders (0 if none); acc_flow rows 2 p and 2 p + 1 the pools'
    Q and B; n_orders[p] the count; acc_sentiment[type] the sentiment.
    """
    cdef Py_ssize_t r, i, p, c, d, e, ahead, start, stop, n_rows = rows.shape[0]
    cdef Py_ssize_t last_line = -1
    cdef double sig, xi, q_hold, amount, spread, kappa, alpha, cap, a
    cdef int k
    # The signals of noise, herding and fundamentalist traders (types 0-2), staged per
    # type and added exactly a block at a time (the same exact sum as one add each).
    cdef double staged[3][SENTIMENT_BLOCK]
    cdef double top[3]
    cdef Py_ssize_t n_staged[3]
    # A block of rows' drives, then their signals: the tanh in a loop of its own (vector
    # code: independent divisions).
    cdef double signal[SIGNAL_BLOCK]
    for k in range(3):
        top[k] = 0.0
        n_staged[k] = 0
    with nogil:
        for start in range(0, n_rows, SIGNAL_BLOCK):
            stop = start + SIGNAL_BLOCK if start + SIGNAL_BLOCK < n_rows else n_rows
            for r in range(start, stop):
                if r + PREFETCH_ROWS < n_rows:
                    ahead = rows[r + PREFETCH_ROWS]
                    last_line = _prefetch_holdings(holdings, ahead, last_line)
                    # The id is read only when the ziggurat rejects the cached word (about
                    # 1 draw in 80), and then it is a cache miss that stalls.
                    prefetch_read(&gid[ahead], 0, 3)
                    if kind[ahead] == _HERDING:
                        for e in range(indptr[ahead], indptr[ahead + 1]):
                            prefetch_read(&s_old[indices[e]], 0, 3)
                    elif kind[ahead] == _ARBITRAGEUR:
                        # Read for arbitrageurs alone: sparse, the hardware does not
                        # follow them.
                        prefetch_read(&arb_weight[ahead], 0, 3)
                        prefetch_read(&pair[ahead], 0, 3)
                # The neighbour ids of a herding trader further ahead, which the line
                # above reads (herding rows are too sparse for the hardware prefetcher).
                if r + 2 * PREFETCH_ROWS < n_rows:
                    ahead = rows[r + 2 * PREFETCH_ROWS]
                    if kind[ahead] == _HERDING and indptr[ahead + 1] > indptr[ahead]:
                        prefetch_read(&indices[indptr[ahead]], 0, 3)
                        prefetch_read(&indices[indptr[ahead + 1] - 1], 0, 3)
                i = rows[r]
                k = kind[i]
                if k > _FUNDAMENTALIST:
                    signal[r - start] = 0.0  # no signal (see below)
                    continue
                p = pool[i]
                xi = philox_normal4(shock_words[tick & 3, i], seed, <uint64_t>gid[i], tick,
                                    _STREAM_TRADER, 0)
                if k == _HERDING:
                    signal[r - start] = (
                        w_self * s_old[i]
                        + w_neigh * (uniform_weight * neighbour_sum(indptr[i], indptr[i + 1],
                                                                    indices, s_old))
                        + w_mom * momentum[p] + sigma * xi)
                elif k == _FUNDAMENTALIST:
                    signal[r - start] = gain[i] * mispricing[p] + sigma * xi
                else:
                    signal[r - start] = noise_sigma * xi
            tanh_block(&signal[0], stop - start)
            for r in range(start, stop):
                i = rows[r]
                p = pool[i]
                k = kind[i]
                buy[i] = 0.0
                sell[i] = 0.0
                buy_pool[i] = p
                sell_pool[i] = p
                if k >= _LIQUIDITY:
                    # Liquidity providers, payment users, borrowers and portfolio managers
                    # place no orders here.
                    s_new[i] = 0.0
                    continue
                if k == _ARBITRAGEUR:
                    s_new[i] = 0.0
                    c = pair_pools[pair[i], 0]
                    d = pair_pools[pair[i], 1]
                    if price[d] < price[c]:
                        c, d = d, c
                    spread = (price[d] * (1.0 - fee[d]) * (1.0 - pair_cost[pair[i]])
                              - price[c] / (1.0 - fee[c]))
                    if spread <= 0.0:
                        continue
                    kappa = price[c] / reserve_base[c] + price[d] / reserve_base[d]
                    alpha = arb_weight[i] * spread / (2.0 * kappa)
                    cap = (holdings[quote_slot[c], i] - gas[c]) / price[c]
                    if alpha > cap:
                        alpha = cap
                    if alpha > holdings[base_slot[d], i]:
                        alpha = holdings[base_slot[d], i]
                    if (alpha <= 0.0 or 0.5 * alpha * spread < gas[c] + gas[d]
                            or holdings[quote_slot[d], i] < gas[d]
                            or alpha * price[c] < min_value[c]
                            or alpha * price[d] < min_value[d]):
                        continue
                    buy[i] = alpha * price[c]
                    buy_pool[i] = c
                    acc_add(&acc_flow[2 * c, 0], buy[i])
                    n_orders[c] += 1
                    sell[i] = alpha
                    sell_pool[i] = d
                    acc_add(&acc_flow[2 * d + 1, 0], alpha)
                    n_orders[d] += 1
                    continue
                sig = signal[r - start]
                s_new[i] = sig
                staged[k][n_staged[k]] = sig
                n_staged[k] += 1
                a = fabs(sig)
                top[k] = a if a > top[k] else top[k]
                if n_staged[k] == SENTIMENT_BLOCK:
                    acc_add_block_top(&acc_sentiment[k, 0], staged[k], SENTIMENT_BLOCK,
                                      top[k])
                    n_staged[k] = 0
                    top[k] = 0.0
                q_hold = holdings[quote_slot[p], i]
                if sig > 0.0:
                    amount = fraction[i] * sig * q_hold
                    if amount > q_hold - gas[p]:
                        amount = q_hold - gas[p]
                    if amount >= min_value[p] and amount > 0.0:
                        buy[i] = amount
                        acc_add(&acc_flow[2 * p, 0], amount)
                        n_orders[p] += 1
                elif sig < 0.0 and q_hold >= gas[p]:
                    amount = fraction[i] * (-sig) * holdings[base_slot[p], i]
                    if amount * price[p] >= min_value[p] and amount > 0.0:
                        sell[i] = amount
                        acc_add(&acc_flow[2 * p + 1, 0], amount)
                        n_orders[p] += 1
        for k in range(3):
            acc_add_block_top(&acc_sentiment[k, 0], staged[k], n_staged[k], top[k])


cdef inline Py_ssize_t _prefetch_holdings(const double[:, ::1] holdings, Py_ssize_t i,
                                          Py_ssize_t last_line) noexcept nogil:
    """Ask for agent i's holdings in every slot, once per 8 agents (about a cache line): the
    kernels read two or four of an agent's slots, which vary with its pool, so the
    rows are read as many sparse streams that the hardware prefetcher follows badly.
    Returns the line asked for."""
    cdef Py_ssize_t s, line = i >> 3
    if line != last_line:
        for s in range(holdings.shape[0]):
            prefetch_read(&holdings[s, i], 0, 3)
    return line


def fill_orders(const int8_t[::1] kind, const int32_t[::1] buy_pool,
                const int32_t[::1] sell_pool, const double[::1] buy, const double[::1] sell,
                const int64_t[::1] base_slot, const int64_t[::1] quote_slot,
                const double[::1] clearing, const double[::1] gas,
                double[:, ::1] holdings, int64_t[:, ::1] acc_holdings):
    """Fill every owned agent's orders at their pools' clearing prices. Local.

    A buy of ``buy`` quote in pool p = buy_pool[i] pays buy + gas quote and
    receives buy / clearing base; a sell of ``sell`` base in p = sell_pool[i]
    receives sell * clearing - gas quote (an arbitrageur has one of each, in
    two pools). ``acc_holdings`` (row type * n_slots + slot) holds the exact
    running total of each type's holdings per slot: every changed holding
    h -> h' adds h' - h to it exactly (as h' and -h, staged per row and added a
    block at a time: ``AccStage``), so a tick costs four staged values per order,
    not an exact add per agent and slot.
    """
    cdef Py_ssize_t i, n = buy.shape[0], n_slots = holdings.shape[0]
    cdef Py_ssize_t row, last_line = -1
    # Opened here, not by a helper given its address (see AccStage: fills 13.1 -> 15.5 ms
    # at 5e5 agents that way).
    cdef AccStage st
    if acc_holdings.shape[1] != NACC:
        raise ValueError(f"acc_holdings must have {NACC} columns, not {acc_holdings.shape[1]}")
    if stage_open(&st, &acc_holdings[0, 0] if acc_holdings.shape[0] else NULL,
                  acc_holdings.shape[0]) != 0:
        raise MemoryError()
    with nogil:
        for i in range(n):
            if i + 8 * PREFETCH_ROWS < n:
                last_line = _prefetch_holdings(holdings, i + 8 * PREFETCH_ROWS, last_line)
            row = kind[i] * n_slots
            if buy[i] > 0.0:
                _move(holdings, &st, row, i, base_slot[buy_pool[i]],
                      buy[i] / clearing[buy_pool[i]],
                      quote_slot[buy_pool[i]], -(buy[i] + gas[buy_pool[i]]))
            if sell[i] > 0.0:
                _move(holdings, &st, row, i, base_slot[sell_pool[i]], -sell[i],
                      quote_slot[sell_pool[i]],
                      sell[i] * clearing[sell_pool[i]] - gas[sell_pool[i]])
        stage_close(&st)


cdef inline void _move(double[:, ::1] holdings, AccStage* st, Py_ssize_t row,
                       Py_ssize_t i, Py_ssize_t b, double db, Py_ssize_t q,
                       double dq) noexcept nogil:
    """holdings[b, i] += db and holdings[q, i] += dq, their exact changes staged."""
    cdef double old_b = holdings[b, i], old_q = holdings[q, i]
    holdings[b, i] = old_b + db
    holdings[q, i] = old_q + dq
    stage_add_diff(st, row + b, holdings[b, i], old_b)
    stage_add_diff(st, row + q, holdings[q, i], old_q)


def portfolio_orders(const int64_t[::1] agents, const int64_t[::1] gid,
                     const int8_t[::1] kind, const int32_t[::1] pool,
                     const double[::1] target, const double[::1] risk_aversion,
                     double[:, ::1] holdings,
                     const int64_t[::1] base_slot, const int64_t[::1] quote_slot,
                     const double[::1] price, const double[::1] fee, const double[::1] gas,
                     const double[::1] min_value, double drift, double vol, double cost,
                     uint64_t seed, uint64_t tick, double[::1] buy, double[::1] sell,
                     int64_t[:, ::1] acc_flow, int64_t[::1] n_orders,
                     int64_t[:, ::1] acc_holdings, int64_t[:, ::1] acc_minted):
    """Portfolio managers: holdings move by the SDE, then a rebalancing order. Local.

    Per agent i in ``agents`` with home pool p (base slot b, quote slot q,
    price P, proportional cost c = fee[p] + cost):

    1. Between trades (paper 4.2, dH = nu dt + sigma dW, here per unit held:
       external deposits and withdrawals) each of the two holdings h in
       slots b and q (draws 0 and 1) becomes
       h' = max(0, h * (1 + drift + vol * xi)), xi ~ N(0, 1) keyed by
       (seed, gid, tick, STREAM_PORTFOLIO, draw), drift = nu dt and
       vol = sigma sqrt(dt). The change is minted (or burned):
       acc_minted[slot] gets h' - h (exactly), acc_holdings its running totals.
    2. Rebalancing toward the target weight w*_i = target[i] of base in
       the portfolio's value W = h_b P + h_q: r = argmin Lambda(H + r) + C(r)
       with Lambda = (lambda_i / 2) W (w - w*)^2 (lambda_i = risk_aversion[i])
       and C = c |r| in quote is solved in closed form: with the band
       half-width beta = c / lambda_i, nothing is traded while
       |w - w*| <= beta (the no-trade band); below it the agent buys
       W (w* - beta - w) quote worth of base, above it sells
       W (w - w* - beta) / P base, back to the nearer edge of the band.
       As for the traders, a buy is capped at the quote holding less the
       gas, a sell needs the gas in quote, and an order worth less than
       min_value[p] is not placed. The orders join the pool's batch
       (acc_flow, n_orders) and are filled by ``fill_orders``.
    """
    cdef Py_ssize_t r, i, p, b, q, n = agents.shape[0], n_slots = holdings.shape[0]
    cdef Py_ssize_t row, last_line = -1
    cdef double wealth, w, band, amount
    # The holdings' exact changes, staged per accumulator row (an agent's changes go to
    # the same few rows as the last agent's: one add each would wait on the last).
    cdef AccStage held, mint
    if acc_holdings.shape[1] != NACC or acc_minted.shape[1] != NACC:
        raise ValueError(f"acc_holdings and acc_minted must have {NACC} columns")
    if stage_open(&held, &acc_holdings[0, 0] if acc_holdings.shape[0] else NULL,
                  acc_holdings.shape[0]) != 0:
        raise MemoryError()
    if stage_open(&mint, &acc_minted[0, 0] if acc_minted.shape[0] else NULL,
                  acc_minted.shape[0]) != 0:
        stage_close(&held)
        raise MemoryError()
    with nogil:
        for r in range(n):
            if r + PREFETCH_ROWS < n:
                last_line = _prefetch_holdings(holdings, agents[r + PREFETCH_ROWS], last_line)
                # Sparse agents: each one's id (the draws' counter) is a line of its own.
                prefetch_read(&gid[agents[r + PREFETCH_ROWS]], 0, 3)
            i = agents[r]
            p = pool[i]
            b = base_slot[p]
            q = quote_slot[p]
            row = kind[i] * n_slots
            _diffuse(holdings, &held, &mint, row, i, b, drift, vol,
                     philox_normal(seed, <uint64_t>gid[i], tick, _STREAM_PORTFOLIO, 0))
            _diffuse(holdings, &held, &mint, row, i, q, drift, vol,
                     philox_normal(seed, <uint64_t>gid[i], tick, _STREAM_PORTFOLIO, 1))
            buy[i] = 0.0
            sell[i] = 0.0
            wealth = holdings[b, i] * price[p] + holdings[q, i]
            if wealth <= 0.0:
                continue
            w = holdings[b, i] * price[p] / wealth
            band = (fee[p] + cost) / risk_aversion[i]
            if w < target[i] - band:
                amount = (target[i] - band - w) * wealth
                if amount > holdings[q, i] - gas[p]:
                    amount = holdings[q, i] - gas[p]
                if amount >= min_value[p] and amount > 0.0:
                    buy[i] = amount
                    acc_add(&acc_flow[2 * p, 0], amount)
                    n_orders[p] += 1
            elif w > target[i] + band and holdings[q, i] >= gas[p]:
                amount = (w - target[i] - band) * wealth / price[p]
                if amount * price[p] >= min_value[p] and amount > 0.0:
                    sell[i] = amount
                    acc_add(&acc_flow[2 * p + 1, 0], amount)
                    n_orders[p] += 1
        stage_close(&held)
        stage_close(&mint)


cdef inline void _diffuse(double[:, ::1] holdings, AccStage* held, AccStage* mint,
                          Py_ssize_t row, Py_ssize_t i, Py_ssize_t s, double drift, double vol,
                          double xi) noexcept nogil:
    """holdings[s, i] *= 1 + drift + vol xi (at least 0), the change minted exactly (staged
    into the type's holdings row and the slot's minted row)."""
    cdef double old = holdings[s, i], new = old * (1.0 + drift + vol * xi)
    if new < 0.0:
        new = 0.0
    holdings[s, i] = new
    stage_add_diff(held, row + s, new, old)
    stage_add_diff(mint, s, new, old)
