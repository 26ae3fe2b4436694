"""Bridges between chains: conversion rates, delays, finite liquidity.

Each bridge of the scenario carries one token between two chains, both ways
(direction 2 i: from -> to, direction 2 i + 1: to -> from). It holds a vault
of the token on each side. Sending a units at tick t moves a into the
vault on the sending side, takes rate * a out of the vault on the receiving
side into flight, and delivers it at tick t + delay. A direction whose
requests exceed its receiving vault is filled pro rata (every sender gets
the same fraction). So for every (chain, token) slot, agents + pools +
vaults + amounts in flight to it change only by defined mints or burns.

``BridgeBook`` is the replicated market-level state (fed with order totals
reduced over all ranks); ``InFlight`` is a rank's list of its own agents'
transfers, which delivers to the same agents that sent. Both local; no MPI.
"""

from __future__ import annotations

import numpy as np

from .spec import MarketSpec


class BridgeBook:
    """Vaults and in-flight totals of every bridge, replicated on every rank. Local.

    Attributes (arrays over directions d = 2 i + side): ``src_slot``,
    ``dst_slot`` (holding slots), ``rate``, ``delay``; ``vault`` has shape
    (n_bridges, 2): the token held on the from (0) and to (1) side.
    """

    def __init__(self, market: MarketSpec):
        bridges = market.bridges
        self.names = [f"{b.from_chain}<->{b.to_chain}:{b.token}" for b in bridges]
        ends = [(b.from_chain, b.to_chain) for b in bridges]
        slot = market.slot_index
        self.side_slot = np.array([[slot(a, b.token), slot(c, b.token)]
                                   for b, (a, c) in zip(bridges, ends, strict=True)],
                                  dtype=np.int64).reshape(-1, 2)
        self.src_slot = self.side_slot.reshape(-1).copy()
        self.dst_slot = self.side_slot[:, ::-1].reshape(-1).copy()
        self.rate = np.repeat([b.rate for b in bridges], 2).astype(np.float64)
        self.delay = np.repeat([b.delay for b in bridges], 2).astype(np.int64)
        self.vault = np.array([[b.liquidity, b.liquidity] for b in bridges],
                              dtype=np.float64).reshape(-1, 2)
        # Ring of in-flight amounts: column t % ring arrives at tick t.
        self._ring = int(self.delay.max()) + 1 if bridges else 1
        self._flight = np.zeros((self.n_directions, self._ring))
        self.halted = np.zeros(self.n_directions, dtype=bool)  # closed by a stress shock

    @property
    def n_directions(self) -> int:
        return self.rate.shape[0]

    def send(self, tick: int, requested) -> np.ndarray:
        """Send the requested amounts (per direction, >= 0) at ``tick``.

        Returns the fraction of each direction's requests that was accepted,
        computed from the vaults before this tick's sends, so that both
        directions of a bridge are treated alike.
        """
        requested = np.asarray(requested, dtype=np.float64)
        if requested.shape != (self.n_directions,) or np.any(requested < 0):
            raise ValueError(f"send: expected {self.n_directions} amounts >= 0")
        need = self.rate * requested
        available = self.vault[:, ::-1].reshape(-1)  # receiving side of each direction
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(need > available, available / need, 1.0)
        fraction[self.halted] = 0.0  # a halted direction accepts nothing
        accepted = fraction * requested
        # A direction short of liquidity empties its receiving vault exactly.
        out = np.where(self.halted, 0.0, np.minimum(need, available))
        vault = self.vault.reshape(-1)  # a view: direction d sends into vault[d]
        vault += accepted
        vault -= out.reshape(-1, 2)[:, ::-1].reshape(-1)
        cols = (tick + self.delay) % self._ring
        self._flight[np.arange(self.n_directions), cols] += out
        return fraction

    def arrive(self, tick: int) -> np.ndarray:
        """Amounts delivered at ``tick`` per direction (in the receiving token)."""
        col = tick % self._ring
        out = self._flight[:, col].copy()
        self._flight[:, col] = 0.0
        return out

    def in_flight(self) -> np.ndarray:
        """Total in flight per direction."""
        return self._flight.sum(axis=1)

    def slot_totals(self, n_slots: int) -> np.ndarray:
        """Vaults plus amounts in flight to each holding slot (for conservation checks)."""
        totals = np.zeros(n_slots)
        np.add.at(totals, self.side_slot.reshape(-1), self.vault.reshape(-1))
        np.add.at(totals, self.dst_slot, self.in_flight())
        return totals


class InFlight:
    """A rank's own agents' bridge transfers: struct of arrays, appended per tick. Local.

    Columns: ``agent`` (local index of the sender, who is also the
    receiver), ``direction``, ``amount`` (in the receiving token) and
    ``arrival`` (tick).
    """

    def __init__(self):
        self.agent = np.zeros(0, dtype=np.int64)
        self.direction = np.zeros(0, dtype=np.int64)
        self.amount = np.zeros(0)
        self.arrival = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self.agent.shape[0]

    def push(self, agent, direction, amount, arrival) -> None:
        """Append transfers (arrays of equal length)."""
        self.agent = np.concatenate((self.agent, np.asarray(agent, dtype=np.int64)))
        self.direction = np.concatenate((self.direction, np.asarray(direction, dtype=np.int64)))
        self.amount = np.concatenate((self.amount, np.asarray(amount, dtype=np.float64)))
        self.arrival = np.concatenate((self.arrival, np.asarray(arrival, dtype=np.int64)))

    def pop_due(self, tick: int):
        """Remove and return (agent, direction, amount) of the transfers arriving at ``tick``,
        in the order they were sent (so that repeated deliveries to one agent add up in
        an order that does not depend on the partition)."""
        due = self.arrival == tick
        out = (self.agent[due], self.direction[due], self.amount[due])
        keep = ~due
        self.agent, self.direction = self.agent[keep], self.direction[keep]
        self.amount, self.arrival = self.amount[keep], self.arrival[keep]
        return out

    def totals(self, n_directions: int) -> np.ndarray:
        """Amount in flight per direction (this rank's share)."""
        return np.bincount(self.direction, weights=self.amount, minlength=n_directions)
