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
momentum (as in B1); fundamentalists toward the oracle price. Holdings are
a (slots, agents) array: row ``s`` is every agent's amount of slot s.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

from _exactsum cimport acc_add
from _fastmath cimport tanh_exp
from _network cimport neighbour_sum
from _philox cimport philox_normal

cdef enum:
    _STREAM_TRADER = 3
    _NOISE = 0
    _HERDING = 1
    _FUNDAMENTALIST = 2
    _N_TYPES = 3
STREAM_TRADER = _STREAM_TRADER
TYPE_NOISE = _NOISE
TYPE_HERDING = _HERDING
TYPE_FUNDAMENTALIST = _FUNDAMENTALIST
N_TYPES = _N_TYPES


def trader_orders(const int64_t[::1] rows, const int64_t[::1] indptr,
                  const int32_t[::1] indices, double uniform_weight,
                  const double[::1] s_old, double[::1] s_new, const int64_t[::1] gid,
                  const int8_t[::1] kind, const int32_t[::1] pool,
                  const double[::1] fraction, const double[::1] gain,
                  const double[:, ::1] holdings,
                  const int64_t[::1] base_slot, const int64_t[::1] quote_slot,
                  const double[::1] momentum, const double[::1] mispricing,
                  const double[::1] gas, const double[::1] min_value,
                  const double[::1] price,
                  double w_self, double w_neigh, double w_mom, double sigma,
                  double noise_sigma, uint64_t seed, uint64_t tick,
                  double[::1] buy, double[::1] sell,
                  int64_t[:, ::1] acc_flow, int64_t[::1] n_orders,
                  int64_t[:, ::1] acc_sentiment):
    """Signal, sentiment and order of each agent in ``rows``. Local.

    Per agent i with home pool p = pool[i] (base slot b, quote slot q, price
    P, gas g = gas[p]): one N(0, 1) shock xi (stream STREAM_TRADER, draw 0), then
    the signal

    * noise: sig = tanh(noise_sigma * xi);
    * herding: sig = tanh(w_self s_i + w_neigh n_i + w_mom momentum[p] + sigma xi),
      n_i = uniform_weight * (neighbour sum of s, four partial sums);
    * fundamentalist: sig = tanh(gain_i * mispricing[p] + sigma xi), with
      mispricing = ln(oracle / price) of the pool.

    s_new[i] = sig. A buy spends fraction_i * sig of the quote holding (at
    most the holding less the gas), a sell offers fraction_i * |sig| of the
    base holding (if the quote holding pays the gas); an order worth less
    than min_value[p] (in quote, at P) is not placed. buy[i] / sell[i]
    receive the order (0 if none); acc_flow rows 2 p and 2 p + 1 the pool's
    Q and B; n_orders[p] the count; acc_sentiment[type] the sentiment.
    """
    cdef Py_ssize_t r, i, p, n_rows = rows.shape[0]
    cdef double sig, xi, drive, q_hold, amount
    cdef int k
    with nogil:
        for r in range(n_rows):
            i = rows[r]
            p = pool[i]
            k = kind[i]
            xi = philox_normal(seed, <uint64_t>gid[i], tick, _STREAM_TRADER, 0)
            if k == _HERDING:
                drive = (w_self * s_old[i]
                         + w_neigh * (uniform_weight * neighbour_sum(indptr[i], indptr[i + 1],
                                                                     indices, s_old))
                         + w_mom * momentum[p] + sigma * xi)
            elif k == _FUNDAMENTALIST:
                drive = gain[i] * mispricing[p] + sigma * xi
            else:
                drive = noise_sigma * xi
            sig = tanh_exp(drive)
            s_new[i] = sig
            acc_add(&acc_sentiment[k, 0], sig)
            q_hold = holdings[quote_slot[p], i]
            buy[i] = 0.0
            sell[i] = 0.0
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


def fill_orders(const int8_t[::1] kind, const int32_t[::1] pool,
                const double[::1] buy, const double[::1] sell,
                const int64_t[::1] base_slot, const int64_t[::1] quote_slot,
                const double[::1] clearing, const double[::1] gas,
                double[:, ::1] holdings, int64_t[:, ::1] acc_holdings):
    """Fill every owned agent's order at its pool's clearing price. Local.

    A buyer pays buy + gas quote and receives buy / clearing base; a seller
    gives sell base and receives sell * clearing - gas quote.
    ``acc_holdings`` (row type * n_slots + slot) holds the exact running total
    of each type's holdings per slot: every changed holding h -> h' adds h'
    and -h to it, so a tick costs four exact adds per order, not one per
    agent and slot.
    """
    cdef Py_ssize_t i, p, b, q, row, n = buy.shape[0], n_slots = holdings.shape[0]
    cdef double old_b, old_q
    with nogil:
        for i in range(n):
            if buy[i] <= 0.0 and sell[i] <= 0.0:
                continue
            p = pool[i]
            b = base_slot[p]
            q = quote_slot[p]
            old_b = holdings[b, i]
            old_q = holdings[q, i]
            if buy[i] > 0.0:
                holdings[q, i] = old_q - (buy[i] + gas[p])
                holdings[b, i] = old_b + buy[i] / clearing[p]
            else:
                holdings[b, i] = old_b - sell[i]
                holdings[q, i] = old_q + (sell[i] * clearing[p] - gas[p])
            row = kind[i] * n_slots
            acc_add(&acc_holdings[row + b, 0], holdings[b, i])
            acc_add(&acc_holdings[row + b, 0], -old_b)
            acc_add(&acc_holdings[row + q, 0], holdings[q, i])
            acc_add(&acc_holdings[row + q, 0], -old_q)
