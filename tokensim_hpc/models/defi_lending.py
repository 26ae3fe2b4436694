"""Leveraged borrowers and liquidation cascades, settled within the tick as messages.

A borrower has locked its base tokens as collateral c in a lending
protocol on its home chain and owes a debt D in the chain's quote token
(borrowed at the start, at ``leverage`` times the collateral's value).
Its health is h = c P LT / D with P the pool price and LT the
``liquidation_threshold``. When h < 1 the protocol liquidates it: an
immediate message (paper 3.1, priority above any threshold) sells
s = min(c, close_factor D (1 + penalty) / P) of the collateral into the
pool. All liquidations of a round are one batch per pool (exact sums over
all ranks); the proceeds s p repay up to D, with the ``penalty`` on top
going to the protocol, and the rest returns to the borrower. The sales push
prices down, so other borrowers may fall below h = 1: they are liquidated
in the next round of the same tick, until no rank has any (a cascade).

Tokens stay conserved: collateral is counted per slot, and what the
protocol receives (repayments and penalties) is recorded. Vectorised over
the borrowers; every total is an exact sum, so the cascade does not depend
on the number of ranks.
"""

from __future__ import annotations

import numpy as np

from ..parallel.reduce import allreduce_exact, allreduce_sum_int, new_accumulators
from .holdings import record_changes

KIND_LIQUIDATION = 2
_IMMEDIATE = 2.0  # priority of a liquidation: above any threshold in [0, 1]


class Borrowers:
    """One rank's leveraged borrowers. Construction is local.

    Parameters
    ----------
    domain : Domain
    agents : int64 array
        Local indices of the borrowers (their holdings must already be set).
    pool : int array
        Home pool of every owned agent.
    pools : PoolBook
    holdings : array (n_slots, n_owned)
        The borrowers' base holdings are moved into collateral here.
    params : DefiModel
    leverage : array
        Each borrower's debt over the value of its collateral at the start.
    board : MessageBoard
        The model's message board; liquidations have a priority above any threshold.
    """

    def __init__(self, domain, agents, pool, pools, holdings, params, leverage, board):
        self.d = domain
        self.agents = np.asarray(agents, dtype=np.int64)
        self.p = params
        self.pool = np.asarray(pool[self.agents], dtype=np.int64)
        self.base_slot = pools.base_slot[self.pool]
        self.quote_slot = pools.quote_slot[self.pool]
        a = self.agents
        price = pools.prices()[self.pool]
        self.collateral = holdings[self.base_slot, a].copy()
        holdings[self.base_slot, a] = 0.0
        self.debt = np.asarray(leverage) * self.collateral * price
        holdings[self.quote_slot, a] += self.debt  # the borrowed tokens
        self.board = board
        self._gid = domain.gid[a]

    def _post_unhealthy(self, tick, prices, round_):
        """Post a liquidation message for every borrower below health 1. Local."""
        p = self.p
        price = prices[self.pool]
        with np.errstate(divide="ignore", invalid="ignore"):
            health = self.collateral * price * p.liquidation_threshold / self.debt
        bad = (self.debt > 0.0) & (self.collateral > 0.0) & (health < 1.0)
        sell = np.minimum(self.collateral[bad],
                          p.close_factor * self.debt[bad] * (1.0 + p.liquidation_penalty)
                          / price[bad])
        self.board.post(tick, KIND_LIQUIDATION, self._gid[bad], self._gid[bad],
                        self.d.comm.rank, _IMMEDIATE, sell, self.base_slot[bad], 0,
                        round_=round_)

    def columns(self, n_owned):
        """Collateral and debt of every owned agent (0 for non-borrowers), for snapshots."""
        col, debt = np.zeros(n_owned), np.zeros(n_owned)
        col[self.agents], debt[self.agents] = self.collateral, self.debt
        return col, debt

    def step(self, tick, pools, holdings, kind, acc_holdings, es):
        """Liquidate until no borrower anywhere is below health 1. Collective.

        Returns (liquidations per pool, collateral sold per pool, rounds, quote
        received by the protocols per slot, collateral per slot, debt per slot).
        """
        n_pools, n_slots = pools.n_pools, holdings.shape[0]
        count = np.zeros(n_pools, dtype=np.int64)
        sold = np.zeros(n_pools)
        received = new_accumulators(n_slots)
        p = self.p

        def liquidate(msgs, round_):
            # Position among the borrowers (self.agents is sorted: local indices in order).
            who = np.searchsorted(self.agents, self.board.local_index(msgs["dst"]))
            pl = self.pool[who]
            acc = new_accumulators(n_pools)
            es.accumulate_grouped(msgs["amount"], pl, acc)
            batch = allreduce_exact(self.d.comm, acc)
            count[:] += allreduce_sum_int(self.d.comm, np.bincount(pl, minlength=n_pools))
            sold[:] += batch
            price = pools.clear(np.zeros(n_pools), batch)
            s = msgs["amount"]
            proceeds = s * price[pl]
            repay = np.minimum(self.debt[who], proceeds / (1.0 + p.liquidation_penalty))
            to_protocol = np.minimum(proceeds, repay * (1.0 + p.liquidation_penalty))
            rest = proceeds - to_protocol
            self.collateral[who] -= s
            self.debt[who] -= repay
            es.accumulate_grouped(to_protocol, self.quote_slot[who], received)
            a, q = self.agents[who], self.quote_slot[who]
            old = holdings[q, a].copy()
            holdings[q, a] = old + rest
            record_changes(holdings, acc_holdings, kind, q, a, old, es)
            self._post_unhealthy(tick, pools.prices(), round_)

        self._post_unhealthy(tick, pools.prices(), 0)
        rounds = self.board.settle(tick, liquidate)
        acc = new_accumulators(2 * n_slots)
        es.accumulate_grouped(self.collateral, self.base_slot, acc)
        es.accumulate_grouped(self.debt, n_slots + self.quote_slot, acc)
        totals = allreduce_exact(self.d.comm, np.vstack((acc, received)))
        return (count, sold, rounds, totals[2 * n_slots:], totals[:n_slots],
                totals[n_slots:2 * n_slots])
