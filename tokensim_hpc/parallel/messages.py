"""Agent-to-agent messages routed to the receiver's owner rank (paper 3.1).

A message m = {type, timestamp, data, priority} goes from one agent to
another (usually along a network edge, so the sender knows the receiver's
owner from the halo plan). Messages whose priority is above the threshold
are settled within the tick: they are exchanged in rounds, a handler applies
each round on the receivers' ranks and may post further immediate messages
(a liquidation triggering default notices), until no rank has any pending
(every rank takes part in every round). The rest are routed once per tick
and delivered at t + delay.

Order: a receiver applies the messages of one round, or of one delivery
tick, sorted by (sent tick, round, sender id, sender's sequence number).
Senders number their messages themselves (deterministically, from their own
state), so the order, and any floating-point sums it drives, do not depend
on how agents are spread over ranks.
"""

from __future__ import annotations

import numpy as np

from .exchange import alltoallv

MESSAGE_DTYPE = np.dtype([
    ("kind", np.int32),        # message type (payment, repayment, liquidation, default, ...)
    ("slot", np.int32),        # holding slot the amount is in
    ("round", np.int32),       # settlement round within the tick (immediate messages)
    ("seq", np.int32),         # sender's number for this message (unique per sender, tick, round)
    ("src", np.int64),         # sender's global id
    ("dst", np.int64),         # receiver's global id
    ("sent", np.int64),        # tick posted (the timestamp)
    ("due", np.int64),         # tick of delivery (= sent for immediate messages)
    ("priority", np.float64),
    ("amount", np.float64),
])

_ORDER = ("sent", "round", "src", "seq")


def _sorted(msgs: np.ndarray) -> np.ndarray:
    keys = tuple(msgs[k] for k in reversed(_ORDER))
    return msgs[np.lexsort(keys)] if msgs.shape[0] > 1 else msgs


class MessageBoard:
    """Outboxes and the inbox of one rank. Construction is local.

    Parameters
    ----------
    comm : MPI communicator
    owned_gid : int64 array
        Global ids of this rank's agents (to map receivers to local indices).
    threshold : float
        Priority above which a message is settled within its tick.
    delay : int
        Ticks after which other messages are delivered (tau >= 1).
    max_rounds : int
        Settlement rounds allowed per tick before the run stops with an error
        (a handler that keeps posting would otherwise loop forever).
    """

    def __init__(self, comm, owned_gid, threshold: float, delay: int, max_rounds: int = 1000):
        if delay < 1:
            raise ValueError("delay must be >= 1 tick")
        self.comm = comm
        self.threshold = float(threshold)
        self.delay = int(delay)
        self.max_rounds = int(max_rounds)
        self._by_gid = np.argsort(owned_gid, kind="stable")
        self._gid_sorted = np.asarray(owned_gid)[self._by_gid]
        self._out = []        # (messages, owner ranks) posted, not yet routed
        self._inbox = np.zeros(0, dtype=MESSAGE_DTYPE)

    def local_index(self, gid: np.ndarray) -> np.ndarray:
        """Local index of owned agents' global ids. Local."""
        return self._by_gid[np.searchsorted(self._gid_sorted, gid)]

    def post(self, tick: int, kind, src, dst, dst_owner, priority, amount, slot, seq,
             round_: int = 0) -> None:
        """Queue messages (array arguments of one length; scalars broadcast). Local.

        Each one is immediate when its priority exceeds the threshold (due at
        ``tick``), otherwise due at ``tick + delay``.
        """
        dst = np.asarray(dst, dtype=np.int64)
        n = dst.shape[0]
        m = np.zeros(n, dtype=MESSAGE_DTYPE)
        m["kind"], m["slot"], m["seq"] = kind, slot, seq
        m["round"] = round_
        m["src"], m["dst"], m["sent"] = src, dst, tick
        m["priority"], m["amount"] = priority, amount
        m["due"] = np.where(m["priority"] > self.threshold, tick, tick + self.delay)
        self._out.append((m, np.broadcast_to(np.asarray(dst_owner, dtype=np.int64), (n,))))

    def _take(self, immediate: bool):
        """Remove the immediate (or the batched) messages from the outbox."""
        if not self._out:
            return np.zeros(0, dtype=MESSAGE_DTYPE), np.zeros(0, dtype=np.int64)
        msgs = np.concatenate([m for m, _ in self._out])
        owners = np.concatenate([o for _, o in self._out])
        now = msgs["priority"] > self.threshold
        pick = now if immediate else ~now
        rest = ~pick
        self._out = [(msgs[rest], owners[rest])] if rest.any() else []
        return msgs[pick], owners[pick]

    def _route(self, msgs, owners) -> np.ndarray:
        """Send each message to its receiver's owner. Collective."""
        order = np.argsort(owners, kind="stable")
        counts = np.bincount(owners, minlength=self.comm.size).astype(np.int64)
        # Records travel as rows of raw bytes: every rank has the same layout.
        rows = np.ascontiguousarray(msgs[order]).view(np.uint8).reshape(-1, MESSAGE_DTYPE.itemsize)
        got = alltoallv(self.comm, rows, counts)
        return np.ascontiguousarray(got).view(MESSAGE_DTYPE).reshape(-1)

    def settle(self, tick: int, handler) -> int:
        """Settle every immediate message of ``tick``, in rounds. Collective.

        ``handler(msgs, round_)`` applies one round's messages received here
        (sorted, receivers owned here) and may post new immediate messages
        with ``round_`` as their round. Returns the number of rounds.
        """
        rounds = 0
        while True:
            msgs, owners = self._take(immediate=True)
            pending = self.comm.allreduce(int(msgs.shape[0]))
            if pending == 0:
                return rounds
            if rounds >= self.max_rounds:
                raise RuntimeError(f"messages of tick {tick} still pending after "
                                   f"{self.max_rounds} settlement rounds")
            got = _sorted(self._route(msgs, owners))
            rounds += 1
            handler(got, rounds)

    def route_batched(self) -> None:
        """Send the queued non-immediate messages to their receivers' ranks. Collective."""
        msgs, owners = self._take(immediate=False)
        got = self._route(msgs, owners)
        self._inbox = np.concatenate((self._inbox, got))

    def deliver(self, tick: int, handler) -> int:
        """Apply the messages due at ``tick`` (sorted) through ``handler(msgs)``. Local.

        Returns how many were delivered.
        """
        due = self._inbox["due"] <= tick
        if not due.any():
            return 0
        msgs = _sorted(self._inbox[due])
        self._inbox = self._inbox[~due]
        handler(msgs)
        return int(msgs.shape[0])

    def in_flight(self) -> np.ndarray:
        """Messages routed here and not yet delivered (a copy). Local."""
        return self._inbox.copy()
