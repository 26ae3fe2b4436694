"""Trade credit: payment obligations between payment users and their network neighbours.

A payment user's purchase from a neighbour (``defi_payments``) is made on
credit with probability ``model.credit_share``: no token moves, and the buyer
owes the seller the amount, an obligation on the edge buyer -> seller. The
obligations are kept on the buyer's rank, one per edge of its row (they add
up while unpaid), in the quote token of the buyer's home pool.

Every ``model.credit_term`` ticks, on its own tick (t + id divisible by the
term), a debtor settles everything it owes:

- if its quote holding covers the total, it repays every creditor in full;
- otherwise it defaults: it pays its whole holding, each creditor the same
  fraction of what it is owed, and sends each creditor a default notice for
  the rest, which the creditor loses.

Repayments are batched messages that land at t + tau like payments (they are
in flight meanwhile); default notices are immediate messages settled within
the tick (paper 3.1): the creditor records its loss. Obligations are claims,
not tokens, so conservation is untouched; what is owed, newly lent, repaid
and written off is recorded per quote slot. The obligations form the
economy's exposure network (``defi_exposure``). An edge that carries an
obligation is kept by network formation (``NetworkFormation.rewire(keep=)``),
so every obligation stays on its edge until settled.

All decisions depend on ids, the tick and the debtor's own state; a debtor's
total is summed in its row's edge order, so everything is the same on any
number of ranks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..risk._inputs import row_sums
from .holdings import record_changes

KIND_REPAYMENT = 3
KIND_DEFAULT = 4


class OwingEdges(NamedTuple):
    """The edges of the exposure network on one rank (CSR order)."""

    edges: np.ndarray  # positions in the domain's CSR, ascending
    owed: np.ndarray   # what each carries (> 0)
    rows: np.ndarray   # each one's source (the debtor), a local index


class TradeCredit:
    """Obligations of one rank's payment users. Construction is local.

    Parameters
    ----------
    users : PaymentUsers
        The payment users (their agents, quote slots, edges and message board).
    params : DefiModel
    """

    def __init__(self, users, params):
        self.u = users
        self.share = float(params.credit_share)
        self.term = int(params.credit_term)
        n_edges = int(users._degree.sum())
        self.owed = np.zeros(n_edges)           # per payment users' edge, in their CSR
        self.loss = np.zeros(users.d.n_owned)   # cumulative losses of owned creditors

    def on_credit(self, u_credit: np.ndarray) -> np.ndarray:
        """Which purchases are on credit (one uniform per payment user). Local."""
        return u_credit < self.share

    def lend(self, edges: np.ndarray, amounts: np.ndarray) -> None:
        """New obligations on the users' ``edges`` (at most one per user). Local."""
        self.owed[edges] += amounts

    def settle(self, tick, holdings, acc_holdings, kind, es):
        """The due debtors repay or default (messages posted, not yet routed). Local.

        Returns (edge values repaid, edge values written off, slot of each, number
        of defaults) for the totals of the tick.
        """
        u = self.u
        # The users whose settlement tick it is, and their edges that carry an obligation
        # (in row order): each debtor's total is the sum of exactly the amounts it pays
        # when it can, so "can it pay?" and the debit agree to the bit.
        cand = np.flatnonzero((tick + u._gid) % self.term == 0)
        degree = u._degree[cand]
        edges = np.repeat(u._start[cand], degree) + (
            np.arange(int(degree.sum())) - np.repeat(np.cumsum(degree) - degree, degree))
        user = np.repeat(np.arange(cand.shape[0]), degree)
        live = self.owed[edges] > 0
        edges, user = edges[live], user[live]
        if edges.size == 0:  # local: settling posts messages, no collective here
            empty = np.zeros(0)
            return empty, empty, np.zeros(0, dtype=np.int64), 0
        debtors, owner = np.unique(user, return_inverse=True)
        who = cand[debtors]
        place = edges - u._start[who][owner]
        owed = self.owed[edges]
        indptr = np.searchsorted(owner, np.arange(who.shape[0] + 1))
        total = row_sums(indptr, owed)
        a, q = u.agents[who], u.quote_slot[who]
        cash = holdings[q, a]
        short = cash < total
        ratio = np.where(short, cash / total, 1.0)
        repaid = np.where(short[owner], owed * ratio[owner], owed)
        lost = np.where(short[owner], owed - repaid, 0.0)
        self.owed[edges] = 0.0
        old = cash.copy()
        holdings[q, a] = np.where(short, 0.0, cash - total)
        record_changes(holdings, acc_holdings, kind, q, a, old, es)
        board, gid = u.board, u._gid[who][owner]
        slot = q[owner]
        k = int(u._degree.max(initial=0))
        # seq: 0 is the tick's payment, 1..k the repayments, k+1..2k the notices.
        board.post(tick, KIND_REPAYMENT, gid, u._targets[edges], u._owners[edges], 0.0,
                   repaid, slot, 1 + place)
        notice = lost > 0
        board.post(tick, KIND_DEFAULT, gid[notice], u._targets[edges[notice]],
                   u._owners[edges[notice]], np.inf, lost[notice], slot[notice],
                   1 + k + place[notice])
        return repaid, lost, slot, int(np.count_nonzero(short))

    def receive_notices(self, receivers: np.ndarray, amounts: np.ndarray) -> None:
        """Creditors (local indices) record the losses of default notices. Local."""
        np.add.at(self.loss, receivers, amounts)

    def owing_edges(self) -> OwingEdges:
        """The edges that carry an obligation: CSR positions (ascending), what they carry
        and their rows (the debtors' local indices). Local."""
        live = np.flatnonzero(self.owed > 0)  # few: indexed three times, found once
        return OwingEdges(self.u._edges[live], self.owed[live], self.u._edge_row[live])

    def liability(self) -> np.ndarray:
        """What each local edge's source owes its target (0 but on payment users'
        edges), one value per edge of the domain's CSR. Local."""
        out = np.zeros(int(self.u.d.indptr[-1]))
        out[self.u._edges] = self.owed
        return out
