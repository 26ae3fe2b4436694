"""Payment users: income, spending, and payments to network neighbours as messages.

Each tick a payment user receives ``income`` of its home chain's quote token
(minted) and spends ``spend`` of its quote holding (burned), both recorded
so that conservation can be checked. With probability ``probability`` it
pays ``fraction`` of its quote holding to one of its network neighbours
(the neighbour and the priority are counter-based draws of its id and the
tick). A share of these purchases is made on credit instead: an obligation
to the neighbour, settled later (``defi_credit.TradeCredit``). The payment
is a message (paper 3.1) to the neighbour's owner rank: one whose priority
is above ``threshold`` is settled within the tick, the others arrive at
t + ``delay`` (``parallel.messages.MessageBoard``). The
amount leaves the payer at once and is in flight until it lands, so
agents + in flight is conserved. Vectorised over the payment users.
"""

from __future__ import annotations

import numpy as np

from ..parallel.reduce import allreduce_exact, new_accumulators
from .defi_credit import KIND_DEFAULT, TradeCredit
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
        self.credit = TradeCredit(self, params)

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
        self._edges = edges  # their places in the domain's CSR
        self._edge_row = np.repeat(self.agents, self._degree)  # and their sources (local)
        self._edge_slot = np.repeat(self.quote_slot, self._degree)  # each edge's debt slot
        slots = domain.indices[edges]
        self._targets = np.concatenate((domain.gid, domain.halo.ghost_gid))[slots]
        self._owners = domain.halo.slot_owner(slots)

    def _uniforms(self, tick):
        """Four uniforms in [0, 1) per payment user from one Philox block: whether it
        buys from a neighbour, which one, the payment's priority, whether on credit."""
        words = np.empty((self.agents.shape[0], 4), dtype=np.uint64)
        self.rng.random_raw(self.seed, self._gid, tick, STREAM_PAYMENT, 0, words)
        return (words >> np.uint64(11)).astype(np.float64).T * 2.0**-53

    def step(self, tick, holdings, kind, acc_holdings, es):
        """Income, spending, new payments and obligations, settlement of the debts due,
        and deliveries. Collective.

        Returns per-slot totals over all ranks, shape (8, n_slots): minted (income),
        burned (spending), paid (sent in the tick), in flight after the tick (payments
        and repayments), obligations outstanding after the tick, newly lent, repaid
        and written off; and the number of debtors that defaulted in the tick.
        """
        n_slots = holdings.shape[0]
        a, q = self.agents, self.quote_slot
        u_pay, u_pick, priority, u_credit = self._uniforms(tick)
        degree = self._degree
        buys = (u_pay < self.p.pay_probability) & (degree > 0)
        credit = buys & self.credit.on_credit(u_credit)
        pays = buys & ~credit
        pick = np.minimum((u_pick * degree).astype(np.int64), degree - 1)
        # Income (minted), spending (burned) and the payment, in one update per user.
        old = holdings[q, a].copy()
        spend = self.p.pay_spend * (old + self.p.pay_income)
        after = old + self.p.pay_income - spend
        amount = np.where(buys, self.p.pay_fraction * after, 0.0)
        holdings[q, a] = after - np.where(pays, amount, 0.0)
        record_changes(holdings, acc_holdings, kind, q, a, old, es)
        edge, slot = self._start[pays] + pick[pays], q[pays]
        self.board.post(tick, KIND_PAYMENT, self._gid[pays], self._targets[edge],
                        self._owners[edge], priority[pays], amount[pays], slot, 0)
        self.credit.lend(self._start[credit] + pick[credit], amount[credit])
        repaid, lost, debt_slot, defaults = self.credit.settle(tick, holdings, acc_holdings,
                                                               kind, es)

        def land(msgs, *_):
            # In the board's sorted order; an agent may receive several payments.
            notice = msgs["kind"] == KIND_DEFAULT
            self.credit.receive_notices(self.board.local_index(msgs["dst"][notice]),
                                        msgs["amount"][notice])
            msgs = msgs[~notice]
            add_to_holdings(holdings, acc_holdings, kind, msgs["slot"].astype(np.int64),
                            self.board.local_index(msgs["dst"]), msgs["amount"], es)

        self.board.settle(tick, land)
        self.board.route_batched()
        self.board.deliver(tick, land)
        flight = self.board.in_flight()
        acc = new_accumulators(8 * n_slots + 1)
        es.accumulate_grouped(np.full(a.shape[0], self.p.pay_income), q, acc)
        es.accumulate_grouped(spend, n_slots + q, acc)
        es.accumulate_grouped(amount[pays], 2 * n_slots + slot, acc)
        es.accumulate_grouped(flight["amount"], 3 * n_slots + flight["slot"].astype(np.int64),
                              acc)
        es.accumulate_grouped(self.credit.owed, 4 * n_slots + self._edge_slot, acc)
        es.accumulate_grouped(amount[credit], 5 * n_slots + q[credit], acc)
        es.accumulate_grouped(repaid, 6 * n_slots + debt_slot, acc)
        es.accumulate_grouped(lost, 7 * n_slots + debt_slot, acc)
        es.accumulate(np.array([float(defaults)]), acc[8 * n_slots])
        sums = allreduce_exact(self.d.comm, acc)
        return sums[:8 * n_slots].reshape(8, n_slots), int(round(sums[8 * n_slots]))
