"""Network formation in the economy (paper 2.2): edge strengths, pruning, new edges.

Every edge i -> j of the distributed CSR has a strength eta_ij in [0, 1]
(``network.eta0`` at the start). Each tick, on every owned row
(``formation.edge_strengths``; the sentiments of ghost neighbours come from
the tick's halo exchange):

    eta_ij <- clip(eta_ij + gamma dt U_ij - delta dt d_ij^2 / (d_ij^2 + d_ref^2), 0, 1)

(the distance term is computed once per network and kept in float32)

with the utility of the connection U_ij = 1 - |s_i - s_j| (agreeing agents
gain from the tie), d_ij their distance in the economic space and
d_ref = sqrt(k / (pi N)) the radius that holds k agents on average: ties
grow with their utility and decay with distance, the paper's
gamma eta grad U - delta (1 - eta) d^-2 read per edge with a bounded
distance term. Every ``network.rewire_every`` ticks the edges weaker than
``network.eta_min`` are replaced (``formation.form_edges``): with
probability ``network.p`` by a long-range edge to a random agent, otherwise
by a friend of a friend (a neighbour of the row's strongest friend, the
one nearest in the economic space). Each row keeps its k edges.

A replacement needs the friends' own rows, also across ranks: every rank
sends the neighbour ids and positions of its agents to the ranks that hold
them as ghosts (k halo exchanges of three columns). The new edges then
change the ghost set, so the halo plan is rebuilt
(:meth:`tokensim_hpc.engine.Domain.rebuild_halo`) and the model
reallocates its ghost columns. All decisions depend on ids, positions,
sentiments and the tick, so the network is the same on any rank count.
"""

from __future__ import annotations

import math

import numpy as np

from ..parallel.reduce import allreduce_exact, allreduce_sum_int, new_accumulators

COUNT_LABELS = ("long_range", "friend_of_friend", "weak_kept")


class NetworkFormation:
    """Edge strengths of one rank's rows and their rewiring. Construction is collective.

    Parameters
    ----------
    domain : Domain
    scenario : Scenario (``run.model = "defi"``)
    kernels : namespace with ``formation`` and ``exactsum``
    """

    def __init__(self, domain, scenario, kernels):
        net = scenario.network
        self.d = domain
        self.kf = kernels.formation
        self.es = kernels.exactsum
        self.seed = int(scenario.run.seed)
        self.every = net.rewire_every
        self.k = net.k
        self.eta0, self.eta_min, self.p_long = net.eta0, net.eta_min, net.p
        dt = 1.0 / scenario.model.ticks_per_day
        self.growth, self.decay = net.gamma * dt, net.delta * dt
        self.d_ref2 = net.k / (math.pi * scenario.agents.n)
        if not np.all(np.diff(domain.indptr) == net.k):
            raise ValueError("network formation needs k edges in every row")
        self.eta = np.full(int(domain.indptr[-1]), net.eta0)
        self.edge_decay = np.zeros(self.eta.shape[0], dtype=np.float32)
        self.x = self.y = None
        self.replaced = np.zeros(self.eta.shape[0], dtype=bool)  # at the last rewiring
        if self.every:
            self._positions()
            self._edge_decay()
            # The sorted owned ids every rewiring's halo rebuild looks targets up in: built
            # with the model (one sort of the owned ids), not in the first rewiring.
            _ = domain.owned_order  # a cached property: computed here

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def _positions(self):
        """Positions over owned and ghost slots. Collective."""
        d = self.d
        n, slots = d.n_owned, d.n_owned + d.halo.n_ghost
        self.x, self.y = np.empty(slots), np.empty(slots)
        self.x[:n], self.y[:n] = d.x, d.y
        d.halo.exchange(self.x, self.y)

    def _edge_decay(self):
        """The distance term of every edge (positions are fixed: once per network). Local.
        Frees the ghost positions, which only a rewiring needs again."""
        d = self.d
        self.kf.edge_decay(d.indptr, d.indices, self.x, self.y, self.decay, self.d_ref2,
                           self.edge_decay)
        self.x = self.y = None

    def strengths(self, s) -> None:
        """One tick of every edge's strength. Local. ``s`` must hold this tick's ghost
        values."""
        d = self.d
        self.kf.edge_strengths(d.indptr, d.indices, s, self.edge_decay, self.eta, self.growth)

    def rewire(self, tick, keep=None) -> tuple[float, np.ndarray]:
        """Replace the weak edges, rebuild the halo plan. Collective.

        ``keep`` (CSR positions of local edges, optional) names edges that must stay
        whatever their strength (they carry obligations): they count as at least ``eta_min``
        for the pruning and keep their own strength. Counting as strong, such an edge
        can also be the row's friend that its other weak edges are replaced through.

        Returns the mean strength over all edges before the pruning (an exact sum), and
        the counts over all ranks (long-range and friend-of-friend edges formed, weak
        edges kept for want of a new target). The model must reallocate its ghost
        columns afterwards (``n_owned + halo.n_ghost`` slots)."""
        d, k = self.d, self.k
        acc = new_accumulators(1)
        self.es.accumulate(self.eta, acc[0])
        mean = float(allreduce_exact(d.comm, acc)[0]) / (d.n_total * k)
        n_ghost = d.halo.n_ghost
        self._positions()
        slot_gid = np.concatenate((d.gid, d.halo.ghost_gid))
        # The ghosts' own rows, from their owners: one exchange per place in the row (ids
        # and positions of the neighbours), taken in one pass over the rows other ranks
        # hold as ghosts and received straight into (k, n_ghost) tables.
        ghost_gid = np.empty((k, n_ghost), dtype=np.int64)
        ghost_x, ghost_y = np.empty((k, n_ghost)), np.empty((k, n_ghost))
        sent = d.halo.n_send
        send_gid = np.empty((k, sent), dtype=np.int64)
        send_x, send_y = np.empty((k, sent)), np.empty((k, sent))
        self.kf.row_tables(d.indices, d.halo.send_idx, slot_gid, self.x, self.y, send_gid,
                           send_x, send_y)
        for c in range(k):
            d.halo.send_values(send_gid[c], ghost_gid[c])
            d.halo.send_values(send_x[c], ghost_x[c])
            d.halo.send_values(send_y[c], ghost_y[c])
        del send_gid, send_x, send_y
        target = np.empty(d.indices.shape[0], dtype=np.int64)
        self.kf.gather_ids(d.indices, slot_gid, target)
        counts = np.zeros(len(COUNT_LABELS), dtype=np.int64)
        kept = np.zeros(0, dtype=np.int64) if keep is None else np.asarray(keep, np.int64)
        own_eta = self.eta[kept]
        self.eta[kept] = np.maximum(own_eta, self.eta_min)
        weak = ~(self.eta >= self.eta_min)  # the edges form_edges may replace (as it tests)
        # What the halo rebuild knows of each edge's target: its owned slot, or -2 for a
        # ghost (another rank's agent); form_edges writes it for the edges it replaces.
        hint = d.known_targets()
        self.kf.form_edges(d.indptr, d.indices, slot_gid, self.x, self.y, ghost_gid, ghost_x,
                           ghost_y, target, hint, self.eta, self.eta_min, self.eta0,
                           self.p_long, d.n_total, self.seed, tick, counts)
        del ghost_gid, ghost_x, ghost_y, slot_gid
        # A replaced edge has a new target (never one of the row's) and starts at eta0,
        # above eta_min; a weak edge that found no new target keeps both.
        self.replaced = weak & (self.eta >= self.eta_min)
        del weak
        self.eta[kept] = own_eta
        self.x = self.y = None
        d.rebuild_halo(target, hint=hint)
        del hint
        self._positions()
        self._edge_decay()
        return mean, allreduce_sum_int(d.comm, counts)

    def snapshot(self) -> dict:
        """Edge columns of a network snapshot (CSR order). Local."""
        return {"edge_target": self.d.edge_targets(), "edge_strength": self.eta}
