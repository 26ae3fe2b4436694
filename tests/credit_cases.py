"""Trade credit settled by hand on a small network (helper module for the tests).

Twelve payment users, each owing three neighbours (some edges nothing); a
third of them has no quote at all, a third plenty, a third half of what it
owes. After one settlement, every creditor must have received exactly
owed * ratio by batched repayments (ratio = cash / total owed when short,
else 1) and a default notice for owed * (1 - ratio), the rest nothing.
Runs on any number of ranks; every rank gets the same verdict.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from risk_cases import domain_from_edges

from tokensim_hpc import kernels
from tokensim_hpc.models.defi_credit import KIND_DEFAULT, KIND_REPAYMENT
from tokensim_hpc.models.defi_payments import PaymentUsers
from tokensim_hpc.parallel.exchange import allgatherv
from tokensim_hpc.parallel.messages import MessageBoard
from tokensim_hpc.parallel.reduce import new_accumulators

N, STEPS = 12, (1, 5, 7)
DELAY, TICK = 2, 3


def _network():
    source = np.repeat(np.arange(N), len(STEPS))
    target = (source + np.tile(STEPS, N)) % N
    place = np.tile(np.arange(len(STEPS)), N)
    owed = np.where((source + place) % 4 == 0, 0.0, (source + 1) * (place + 1) * 0.5)
    return source, target, owed


def _cash(total):
    i = np.arange(N)
    return np.where(i % 3 == 0, 0.0, np.where(i % 3 == 1, 1e6, 0.5 * total))


def expected():
    """{(debtor, creditor): (repaid, lost)} by the rules, serially."""
    source, target, owed = _network()
    total = np.bincount(source, weights=owed, minlength=N)
    cash = _cash(total)
    out = {}
    for s, t, o in zip(source, target, owed, strict=True):
        if o == 0:
            continue
        ratio = cash[s] / total[s] if cash[s] < total[s] else 1.0
        out[(int(s), int(t))] = (o * ratio, o - o * ratio if ratio < 1 else 0.0)
    return out


def settle_by_hand(comm):
    """Settle once on ``comm``; return the failures (the same list on every rank)."""
    source, target, owed = _network()
    d, local_edges = domain_from_edges(comm, N, source, target)
    ks = kernels.load("cython")
    params = SimpleNamespace(credit_share=0.5, credit_term=1)
    board = MessageBoard(comm, d.gid, threshold=0.9, delay=DELAY)
    users = PaymentUsers(d, np.arange(d.n_owned), np.zeros(d.n_owned, dtype=np.int64), params,
                         ks.rng, 1, board)
    users.credit.owed[:] = owed[local_edges]  # the users are every agent, in CSR order
    total = np.bincount(source, weights=owed, minlength=N)
    holdings = _cash(total)[d.gid][None, :].copy()
    kind = np.zeros(d.n_owned, dtype=np.int8)
    acc = new_accumulators(1)
    users.credit.settle(TICK, holdings, acc, kind, ks.exactsum)
    got = []

    def keep(msgs, *_):
        got.append(msgs.copy())

    board.settle(TICK, keep)
    board.route_batched()
    board.deliver(TICK + DELAY - 1, keep)  # nothing batched is due yet
    early = sum(int(m.shape[0]) for m in got)
    notices = [m for m in got if np.all(m["kind"] == KIND_DEFAULT)]
    board.deliver(TICK + DELAY, keep)
    msgs = np.concatenate(got) if got else np.zeros(0, dtype=board._inbox.dtype)
    rows = np.column_stack((msgs["src"], msgs["dst"], msgs["kind"])).astype(np.float64)
    table = allgatherv(comm, np.column_stack((rows, msgs["amount"])).reshape(-1))
    table = table.reshape(-1, 4)
    failures = []
    if early != sum(int(m.shape[0]) for m in notices):
        failures.append("a repayment landed before t + tau, or a notice was batched")
    want = expected()
    for (s, t), (repaid, lost) in want.items():
        mine = table[(table[:, 0] == s) & (table[:, 1] == t)]
        pay = mine[mine[:, 2] == KIND_REPAYMENT, 3]
        note = mine[mine[:, 2] == KIND_DEFAULT, 3]
        if pay.shape != (1,) or pay[0] != repaid:
            failures.append(f"{s} -> {t}: repaid {pay.tolist()}, want {repaid}")
        if (lost > 0) != (note.shape == (1,)) or (lost > 0 and note[0] != lost):
            failures.append(f"{s} -> {t}: notice {note.tolist()}, want {lost}")
    if table.shape[0] != len(want) + sum(1 for r, lost in want.values() if lost > 0):
        failures.append(f"{table.shape[0]} messages, some to no creditor")
    # The debtors' holdings: 0 when short, cash - total otherwise; nothing owed after.
    left = allgatherv(comm, holdings[0])
    cash = _cash(total)[allgatherv(comm, d.gid)]
    tot = total[allgatherv(comm, d.gid)]
    if not np.array_equal(left, np.where(cash < tot, 0.0, cash - tot)):
        failures.append("debtors' holdings after settling")
    if comm.allreduce(bool(users.credit.owed.any())):
        failures.append("obligations left after settling")
    d.halo.destroy()
    return failures
