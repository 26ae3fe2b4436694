"""Payment users: income, spending, and payments to network neighbours as messages.

Each tick a payment user receives ``income`` of its home chain's quote token
(minted) and spends ``spend`` of its quote holding (burned), both recorded
so that conservation can be checked. With probability ``probability`` it
pays ``fraction`` of its quote holding to one of its network neighbours
(the neighbour and the priority are counter-based draws of its id and the
tick). The payment is a message (paper 3.1) to the neighbour's owner rank:
one whose priority is above ``threshold`` is settled within the tick, the
others arrive at t + ``delay`` (``parallel.messages.MessageBoard``). The
amount leaves the payer at once and is in flight until it lands, so
agents + in flight is conserved. Vectorised over the payment users.
"""

from __future__ import annotations

import numpy as np

from ..parallel.reduce import allreduce_exact, new_accumulators
from .holdings import add_to_holdings, record_changes

KIND_PAYMENT = 1
# Counter-based stream of the payment draws (B1 shock 1, oracle 2, traders 3, set-up 4).
STREAM_PAYMENT = 5


class PaymentUsers:
    """Payments of one rank's payment users. Construction is local.

    Parameters
    ----------
    domain : Domain
    agents : int64 array
        Local indices of the payment users.
    quote_slot : int64 array
        Each payment user's money: the quote slot of its home pool.
    params : DefiModel
    rng : kernel module with ``random_raw``
    seed : int
    board : MessageBoard
        The model's message board (shared with the borrowers' liquidations).
    """

    def __init__(self, domain, agents, quote_slot, params, rng, seed, board):
        self.d = domain
        self.agents = np.asarray(agents, dtype=np.int64)
        self.quote_slot = np.asarray(quote_slot, dtype=np.int64)
        self.p = params
        self.rng = rng
        self.seed = int(seed)
        self.board = board
        self._gid = domain.gid[self.agents]
        self.cache_edges()

    def cache_edges(self) -> None:
        """The payment users' own edges only (a CSR of theirs): target ids and owner ranks.
        Called again whenever the network changes. Local."""
        domain = self.d
        indptr = domain.indptr
        self._degree = indptr[self.agents + 1] - indptr[self.agents]
        self._start = np.zeros(self.agents.shape[0], dtype=np.int64)
        np.cumsum(self._degree[:-1], out=self._start[1:])
        edges = (np.repeat(indptr[self.agents] - self._start, self._degree)
                 + np.arange(int(self._degree.sum())))
        slots = domain.indices[edges]
        self._targets = np.concatenate((domain.gid, domain.halo.ghost_gid))[slots]
        self._owners = domain.halo.slot_owner(slots)

    def _uniforms(self, tick):
        """Three uniforms in [0, 1) per payment user from one Philox block (words 0-2):
        whether it pays, which neighbour, the priority."""
        words = np.empty((self.agents.shape[0], 4), dtype=np.uint64)
        self.rng.random_raw(self.seed, self._gid, tick, STREAM_PAYMENT, 0, words)
        return (words[:, :3] >> np.uint64(11)).astype(np.float64).T * 2.0**-53

    def step(self, tick, holdings, kind, acc_holdings, es):
        """Income, spending, new payments, settlement and deliveries. Collective.

        Returns per-slot totals over all ranks, shape (4, n_slots): minted (income),
        burned (spending), paid (sent in the tick) and in flight after the tick.
        """
        n_slots = holdings.shape[0]
        a, q = self.agents, self.quote_slot
        u_pay, u_pick, priority = self._uniforms(tick)
        degree = self._degree
        pays = (u_pay < self.p.pay_probability) & (degree > 0)
        pick = np.minimum((u_pick * degree).astype(np.int64), degree - 1)
        # Income (minted), spending (burned) and the payment, in one update per user.
        old = holdings[q, a].copy()
        spend = self.p.pay_spend * (old + self.p.pay_income)
        after = old + self.p.pay_income - spend
        amount = np.where(pays, self.p.pay_fraction * after, 0.0)
        holdings[q, a] = after - amount
        record_changes(holdings, acc_holdings, kind, q, a, old, es)
        edge, slot = self._start[pays] + pick[pays], q[pays]
        self.board.post(tick, KIND_PAYMENT, self._gid[pays], self._targets[edge],
                        self._owners[edge], priority[pays], amount[pays], slot, 0)

        def land(msgs, *_):
            # In the board's sorted order; an agent may receive several payments.
            add_to_holdings(holdings, acc_holdings, kind, msgs["slot"].astype(np.int64),
                            self.board.local_index(msgs["dst"]), msgs["amount"], es)

        self.board.settle(tick, land)
        self.board.route_batched()
        self.board.deliver(tick, land)
        flight = self.board.in_flight()
        acc = new_accumulators(4 * n_slots)
        es.accumulate_grouped(np.full(a.shape[0], self.p.pay_income), q, acc)
        es.accumulate_grouped(spend, n_slots + q, acc)
        es.accumulate_grouped(amount[pays], 2 * n_slots + slot, acc)
        es.accumulate_grouped(flight["amount"], 3 * n_slots + flight["slot"].astype(np.int64),
                              acc)
        return allreduce_exact(self.d.comm, acc).reshape(4, n_slots)
