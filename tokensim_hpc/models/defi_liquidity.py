"""Liquidity providers: deposits into and withdrawals from their home pool.

After the tick's clearing, a liquidity provider looks at its pool's
momentum m (the same number on every rank): when |m| <= ``calm`` it offers
``fraction`` of its base and quote holdings; when |m| >= ``stress`` it
withdraws ``fraction`` of its shares (fear of impermanent loss). Offers and
withdrawals are summed per pool exactly over all ranks; the pool takes the
largest deposit at its ratio x : y that the offers cover
(``PoolBook.add_liquidity``) and pays the withdrawals out of its reserves
(``remove_liquidity``). Every provider gets the same fraction of its offer
taken, shares in proportion to the value it deposited, and a share of the
payout in proportion to the shares it burned. Vectorised over the
providers; the totals are exact sums, so the result does not depend on the
number of ranks.
"""

from __future__ import annotations

import numpy as np

from ..parallel.reduce import allreduce_exact, new_accumulators
from .holdings import record_changes


class LiquidityProviders:
    """Deposits and withdrawals of one rank's liquidity providers. Local construction.

    Parameters
    ----------
    agents : int64 array
        Local indices of the liquidity providers.
    fraction, calm, stress : float
        Scenario values ``model.lp_fraction``, ``model.lp_calm``, ``model.lp_stress``.
    """

    def __init__(self, agents, fraction, calm, stress):
        self.agents = np.asarray(agents, dtype=np.int64)
        self.fraction = float(fraction)
        self.calm = float(calm)
        self.stress = float(stress)

    def step(self, comm, pools, pool, momentum, holdings, shares, kind, acc_holdings, es):
        """Offer, deposit, withdraw and pay out. Collective.

        ``shares`` (per owned agent) is updated in place. Returns (base deposited,
        quote deposited, shares minted, shares burned) per pool.
        """
        n_pools = pools.n_pools
        a = self.agents
        p = pool[a].astype(np.int64)
        bs, qs = pools.base_slot[p], pools.quote_slot[p]
        m = np.abs(momentum[p])
        deposit = m <= self.calm
        withdraw = m >= self.stress
        offer_b = np.where(deposit, self.fraction * holdings[bs, a], 0.0)
        offer_q = np.where(deposit, self.fraction * holdings[qs, a], 0.0)
        burn = np.where(withdraw, self.fraction * shares[a], 0.0)
        acc = new_accumulators(3 * n_pools)
        es.accumulate_grouped(offer_b, 3 * p, acc)
        es.accumulate_grouped(offer_q, 3 * p + 1, acc)
        es.accumulate_grouped(burn, 3 * p + 2, acc)
        totals = allreduce_exact(comm, acc).reshape(n_pools, 3)
        want_b, want_q, burn_total = totals[:, 0], totals[:, 1], totals[:, 2]
        prices = pools.prices()
        # The pool takes the same fraction of every offer: used / offered, per side.
        with np.errstate(divide="ignore", invalid="ignore"):
            used_b, used_q, minted = pools.add_liquidity(want_b, want_q)
            take_b = np.where(want_b > 0, used_b / want_b, 0.0)
            take_q = np.where(want_q > 0, used_q / want_q, 0.0)
            value = want_b * take_b * prices + want_q * take_q
            mint_per_value = np.where(value > 0, minted / value, 0.0)
            out_b, out_q = pools.remove_liquidity(np.minimum(burn_total, pools.lp_supply))
            pay_b = np.where(burn_total > 0, out_b / burn_total, 0.0)
            pay_q = np.where(burn_total > 0, out_q / burn_total, 0.0)
        d_b = -offer_b * take_b[p] + burn * pay_b[p]
        d_q = -offer_q * take_q[p] + burn * pay_q[p]
        moved = (d_b != 0.0) | (d_q != 0.0)
        a, p, bs, qs = a[moved], p[moved], bs[moved], qs[moved]
        for slot, delta in ((bs, d_b[moved]), (qs, d_q[moved])):
            old = holdings[slot, a].copy()
            holdings[slot, a] = old + delta
            record_changes(holdings, acc_holdings, kind, slot, a, old, es)
        minted_i = (offer_b[moved] * take_b[p] * prices[p] + offer_q[moved] * take_q[p]) \
            * mint_per_value[p]
        shares[a] += minted_i - burn[moved]
        return used_b, used_q, minted, burn_total
