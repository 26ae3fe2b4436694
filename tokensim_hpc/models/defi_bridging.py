"""Arbitrageurs moving their inventory between chains over bridges.

An arbitrageur's trades leave it with more of the bridge token on one side
of its pair and less on the other. After the fills, one whose holding of
that token on one side exceeds ``imbalance`` times the other sends half the
difference across; the bridge (``markets.bridges.BridgeBook``, replicated)
accepts a fraction of each direction's total request, limited by its vault
on the receiving side, and the same fraction of every request. The sender
pays at once; ``rate`` times the accepted amount travels in this rank's
``InFlight`` queue (the sender is also the receiver, so a transfer never
changes rank) and lands at the start of tick t + delay.

Vectorised over the arbitrageurs; totals per direction are exact sums, so
the accepted fraction, and every agent's transfer, is the same on any
number of ranks.
"""

from __future__ import annotations

import numpy as np

from ..markets.bridges import BridgeBook, InFlight
from ..parallel.reduce import allreduce_exact, new_accumulators
from .holdings import add_to_holdings, record_changes


class InventoryBridging:
    """Bridge transfers of one rank's arbitrageurs. Construction is local.

    Parameters
    ----------
    market : MarketSpec
    pair_pools : int64 array (n_pairs, 2)
    pools : PoolBook
    imbalance : float
        Send when one side holds more than this many times the other.
    """

    def __init__(self, market, pair_pools, pools, imbalance=2.0):
        self.book = BridgeBook(market)
        self.queue = InFlight()
        self._movers = None
        self.imbalance = float(imbalance)
        chains = [c.name for c in market.chains]
        n_pairs = pair_pools.shape[0]
        # Per pair: the direction from side a to side b of its cheapest bridge (-1: none).
        self.dir_ab = np.full(n_pairs, -1, dtype=np.int64)
        for k, (a, b) in enumerate(pair_pools):
            ca, cb = chains[pools.chain[a]], chains[pools.chain[b]]
            pa = market.pools[a]
            best = -1.0
            for i, br in enumerate(market.bridges):
                joins = {br.from_chain, br.to_chain} == {ca, cb}
                if br.token not in (pa.base, pa.quote) or not joins:
                    continue
                if br.rate > best:
                    best = br.rate
                    self.dir_ab[k] = 2 * i + (0 if br.from_chain == ca else 1)

    def labels(self, market) -> list[str]:
        """Names of the bridge directions: ``from->to:TOKEN``."""
        out = []
        for br in market.bridges:
            out += [f"{br.from_chain}->{br.to_chain}:{br.token}",
                    f"{br.to_chain}->{br.from_chain}:{br.token}"]
        return out

    def deliver(self, tick, holdings, kind, acc_holdings, es) -> np.ndarray:
        """Land the transfers due at ``tick`` (start of the tick). Local for the agents;
        returns the book's deliveries per direction (replicated)."""
        agent, direction, amount = self.queue.pop_due(tick)
        # In the order they were sent; an agent may receive two transfers at once.
        add_to_holdings(holdings, acc_holdings, kind, self.book.dst_slot[direction], agent,
                        amount, es)
        return self.book.arrive(tick)

    def send(self, comm, tick, holdings, kind, pair, acc_holdings, es) -> np.ndarray:
        """Requests of this rank's arbitrageurs, the bridges' answer, the payments and the
        transfers into flight. Collective. Returns the accepted amounts per direction."""
        n_dir = self.book.n_directions
        if self._movers is None:  # arbitrageurs whose pair has a bridge (fixed for the run)
            self._movers = np.flatnonzero((pair >= 0) & (self.dir_ab[np.maximum(pair, 0)] >= 0))
        agents = self._movers
        d_ab = self.dir_ab[pair[agents]]
        src_a = self.book.src_slot[d_ab]
        src_b = self.book.dst_slot[d_ab]
        h_a, h_b = holdings[src_a, agents], holdings[src_b, agents]
        a_to_b = h_a > self.imbalance * h_b
        b_to_a = h_b > self.imbalance * h_a
        move = a_to_b | b_to_a
        agents, h_a, h_b, a_to_b = agents[move], h_a[move], h_b[move], a_to_b[move]
        direction = np.where(a_to_b, d_ab[move], d_ab[move] ^ 1)
        request = np.where(a_to_b, h_a - h_b, h_b - h_a) * 0.5
        acc = new_accumulators(n_dir)
        es.accumulate_grouped(request, direction, acc)
        totals = allreduce_exact(comm, acc)
        fraction = self.book.send(tick, totals)
        accepted = fraction[direction] * request
        src = self.book.src_slot[direction]
        old = holdings[src, agents].copy()
        holdings[src, agents] = old - accepted
        record_changes(holdings, acc_holdings, kind, src, agents, old, es)
        sent = accepted > 0.0
        self.queue.push(agents[sent], direction[sent],
                        self.book.rate[direction[sent]] * accepted[sent],
                        tick + self.book.delay[direction[sent]])
        return totals * fraction

