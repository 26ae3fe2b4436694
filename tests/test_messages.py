"""Agent-to-agent messages across ranks (paper 3.1): immediate ones settle in their
tick, in rounds, batched ones arrive at t + delay, and balances are bit-identical
to a serial reference whatever the number of ranks.

The test economy: 97 agents, each paying 3 out-neighbours every tick. A payment
whose priority is above the threshold is immediate; an immediate payment above
0.5 makes its receiver forward half of it to its own first neighbour, again
immediately, up to round 3 (chains of settlement rounds). Agents are owned by
ranks in a scattered way (gid * 7 % size) to stress the routing. Runs serially in
the serial suite and under mpirun at 2, 3 and 4 ranks in the MPI suite.
"""

import numpy as np
import pytest

from tokensim_hpc.parallel.messages import MESSAGE_DTYPE, MessageBoard
from tokensim_hpc.parallel.mpi import world

N, DEG, TICKS, DELAY, THRESHOLD = 97, 3, 6, 2, 0.7
PAY = 1


def _economy():
    rs = np.random.default_rng(5)
    nbr = np.array([rs.choice(np.delete(np.arange(N), i), DEG, replace=False)
                    for i in range(N)])
    amount = rs.exponential(0.4, (TICKS + 1, N, DEG))
    priority = rs.random((TICKS + 1, N, DEG))
    return nbr, amount, priority


def _forwards(msgs, round_):
    """Which received immediate payments are forwarded, and their seq per forwarder."""
    fwd = msgs[(msgs["amount"] > 0.5) & (round_ <= 3)]
    # seq: position among the forwarder's own forwards of this round (msgs are sorted).
    order = np.argsort(fwd["dst"], kind="stable")
    seq = np.empty(fwd.shape[0], dtype=np.int32)
    d = fwd["dst"][order]
    first = np.r_[0, np.flatnonzero(d[1:] != d[:-1]) + 1] if d.size else np.zeros(0, int)
    counts = np.diff(np.r_[first, d.size])
    seq[order] = np.arange(d.size) - np.repeat(first, counts)
    return fwd, seq


def reference():
    """Serial semantics: balance per tick after settlement and deliveries."""
    nbr, amount, priority = _economy()
    bal = np.full(N, 10.0)
    inbox = []
    per_tick = []
    for t in range(1, TICKS + 1):
        out = np.zeros(N * DEG, dtype=MESSAGE_DTYPE)
        out["src"] = np.repeat(np.arange(N), DEG)
        out["dst"] = nbr.reshape(-1)
        out["seq"] = np.tile(np.arange(DEG), N)
        out["amount"] = amount[t].reshape(-1)
        out["priority"] = priority[t].reshape(-1)
        out["sent"] = t
        out["due"] = np.where(out["priority"] > THRESHOLD, t, t + DELAY)
        np.subtract.at(bal, out["src"], out["amount"])
        now = out[out["priority"] > THRESHOLD]
        inbox.append(out[out["priority"] <= THRESHOLD])
        r = 0
        while now.size:
            r += 1
            now = now[np.lexsort((now["seq"], now["src"], now["round"], now["sent"]))]
            for m in now:
                bal[m["dst"]] += m["amount"]
            fwd, seq = _forwards(now, r)
            nxt = np.zeros(fwd.shape[0], dtype=MESSAGE_DTYPE)
            nxt["src"], nxt["dst"] = fwd["dst"], nbr[fwd["dst"], 0]
            nxt["seq"], nxt["round"], nxt["sent"], nxt["due"] = seq, r, t, t
            nxt["amount"], nxt["priority"] = fwd["amount"] * 0.5, 1.0
            for m in nxt:
                bal[m["src"]] -= m["amount"]
            now = nxt
        box = np.concatenate(inbox)
        due = box[box["due"] <= t]
        inbox = [box[box["due"] > t]]
        due = due[np.lexsort((due["seq"], due["src"], due["round"], due["sent"]))]
        for m in due:
            bal[m["dst"]] += m["amount"]
        per_tick.append(bal.copy())
    return per_tick


def distributed(comm):
    nbr, amount, priority = _economy()
    owner_of = (np.arange(N) * 7) % comm.size
    mine = np.flatnonzero(owner_of == comm.rank).astype(np.int64)
    bal = np.full(mine.size, 10.0)
    board = MessageBoard(comm, mine, THRESHOLD, DELAY)
    rounds_seen = []
    per_tick = []
    in_flight = []

    def settle_round(msgs, round_):
        assert np.all(owner_of[msgs["dst"]] == comm.rank)
        assert np.all(msgs["due"] == t) and np.all(msgs["priority"] > THRESHOLD)
        np.add.at(bal, board.local_index(msgs["dst"]), msgs["amount"])
        fwd, seq = _forwards(msgs, round_)
        if fwd.size:
            np.subtract.at(bal, board.local_index(fwd["dst"]), fwd["amount"] * 0.5)
        dst = nbr[fwd["dst"], 0]
        board.post(t, PAY, fwd["dst"], dst, owner_of[dst], 1.0, fwd["amount"] * 0.5, 0, seq,
                   round_=round_)

    def deliver(msgs):
        assert np.all(msgs["due"] == t)
        np.add.at(bal, board.local_index(msgs["dst"]), msgs["amount"])

    for t in range(1, TICKS + 1):
        dst = nbr[mine].reshape(-1)
        amt = amount[t][mine].reshape(-1)
        board.post(t, PAY, np.repeat(mine, DEG), dst, owner_of[dst], priority[t][mine].reshape(-1),
                   amt, 0, np.tile(np.arange(DEG), mine.size))
        np.subtract.at(bal, np.repeat(np.arange(mine.size), DEG), amt)
        rounds_seen.append(board.settle(t, settle_round))
        board.route_batched()
        board.deliver(t, deliver)
        full = np.zeros(N)
        full[mine] = bal
        per_tick.append(comm.allreduce(full))  # exact: one nonzero term per agent
        in_flight.append(comm.allreduce(float(board.in_flight()["amount"].sum())))
    return per_tick, rounds_seen, in_flight


def _check(comm):
    got, rounds, in_flight = distributed(comm)
    ref = reference()
    ok = all(np.array_equal(g, r) for g, r in zip(got, ref, strict=True))
    # Payments conserve money: balances plus what is in flight.
    ok &= all(abs(g.sum() + f - 10.0 * N) < 1e-9 for g, f in zip(got, in_flight, strict=True))
    ok &= all(f > 0 for f in in_flight)
    ok &= max(rounds) >= 3  # chains of immediate payments did take several rounds
    return bool(comm.allreduce(bool(ok), op=_land()))


def _land():
    from mpi4py import MPI

    return MPI.LAND


def test_messages_serial():
    from mpi4py import MPI

    assert _check(MPI.COMM_SELF)


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
def test_messages_across_ranks():
    assert _check(world())


def test_batched_message_waits_for_its_tick():
    from mpi4py import MPI

    board = MessageBoard(MPI.COMM_SELF, np.array([0, 1], dtype=np.int64), 0.5, 3)
    board.post(4, PAY, [0], [1], [0], 0.1, 2.5, 0, [0])
    board.post(4, PAY, [1], [0], [0], 0.9, 1.5, 0, [0])
    got = []
    assert board.settle(4, lambda m, r: got.append(("now", m["amount"].tolist(), r))) == 1
    board.route_batched()
    for t in range(4, 8):
        board.deliver(t, lambda m, t=t: got.append((t, m["amount"].tolist())))
    assert got == [("now", [1.5], 1), (7, [2.5])]
    with pytest.raises(ValueError):
        MessageBoard(MPI.COMM_SELF, np.zeros(0, dtype=np.int64), 0.5, 0)


def test_runaway_settlement_is_stopped():
    from mpi4py import MPI

    board = MessageBoard(MPI.COMM_SELF, np.array([0], dtype=np.int64), 0.5, 1, max_rounds=5)
    board.post(1, PAY, [0], [0], [0], 1.0, 1.0, 0, [0])

    def echo(m, r):
        board.post(1, PAY, [0], [0], [0], 1.0, 1.0, 0, [0], round_=r)

    with pytest.raises(RuntimeError, match="after 5 settlement rounds"):
        board.settle(1, echo)
