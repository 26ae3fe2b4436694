"""Changes to the economy's holdings, kept in step with their exact running totals.

The model keeps, per (agent type, slot), the exact sum of every holding
(``Defi._acc_hold``, rows type * n_slots + slot). Whatever changes a
holding outside the fill kernel adds the new value and the negated old one
to that row, so the totals stay exact without summing every holding each
tick. Local; vectorised.
"""

from __future__ import annotations

import numpy as np


def record_changes(holdings, acc, kind, slot, agent, old, es):
    """Add the changes of holdings[slot, agent] (new and -old) to the exact running totals.

    Each (slot, agent) pair must appear once.
    """
    row = kind[agent].astype(np.int64) * holdings.shape[0] + slot
    es.accumulate_grouped(np.concatenate((holdings[slot, agent], -old)), np.tile(row, 2), acc)


def add_to_holdings(holdings, acc, kind, slot, agent, amount, es):
    """holdings[slot, agent] += amount, in the order given (a pair may repeat), with the
    changes recorded once per changed holding."""
    if agent.size == 0:
        return
    old = holdings[slot, agent].copy()
    np.add.at(holdings, (slot, agent), amount)
    _, first = np.unique(slot * holdings.shape[1] + agent, return_index=True)
    record_changes(holdings, acc, kind, slot[first], agent[first], old[first], es)
