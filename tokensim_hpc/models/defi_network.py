"""Network formation in the economy (paper 2.2): edge strengths, pruning, new edges.

Every edge i -> j of the distributed CSR has a strength eta_ij in [0, 1]
(``network.eta0`` at the start). Each tick, on every owned row
(``formation.edge_strengths``; the sentiments of ghost neighbours come from
the tick's halo exchange):

    eta_ij <- clip(eta_ij + gamma dt U_ij - delta dt d_ij^2 / (d_ij^2 + d_ref^2), 0, 1)

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
        self.x = self.y = None
        if self.every:
            self._positions()

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

    def strengths(self, s) -> None:
        """One tick of every edge's strength. Local. ``s`` must hold this tick's ghost
        values."""
        d = self.d
        self.kf.edge_strengths(d.indptr, d.indices, s, self.x, self.y, self.eta, self.growth,
                               self.decay, self.d_ref2)

    def rewire(self, tick) -> tuple[float, np.ndarray]:
        """Replace the weak edges, rebuild the halo plan. Collective.

        Returns the mean strength over all edges before the pruning (an exact sum), and
        the counts over all ranks (long-range and friend-of-friend edges formed, weak
        edges kept for want of a new target). The model must reallocate its ghost
        columns afterwards (``n_owned + halo.n_ghost`` slots)."""
        d, k = self.d, self.k
        acc = new_accumulators(1)
        self.es.accumulate(self.eta, acc[0])
        mean = float(allreduce_exact(d.comm, acc)[0]) / (d.n_total * k)
        n, slots = d.n_owned, d.n_owned + d.halo.n_ghost
        target = d.edge_targets()
        # Every slot's own row: neighbour ids and positions, ghosts' rows from their owners.
        row_gid = np.empty((k, slots), dtype=np.int64)
        row_x, row_y = np.empty((k, slots)), np.empty((k, slots))
        row_gid[:, :n] = target.reshape(n, k).T
        cols = d.indices.reshape(n, k).T
        np.take(self.x, cols, out=row_x[:, :n])
        np.take(self.y, cols, out=row_y[:, :n])
        for c in range(k):
            d.halo.exchange(row_gid[c], row_x[c], row_y[c])
        counts = np.zeros(len(COUNT_LABELS), dtype=np.int64)
        self.kf.form_edges(d.indptr, d.indices, d.gid, self.x, self.y, row_gid, row_x, row_y,
                           target, self.eta, self.eta_min, self.eta0, self.p_long, d.n_total,
                           self.seed, tick, counts)
        del row_gid, row_x, row_y
        d.rebuild_halo(target)
        self._positions()
        return mean, allreduce_sum_int(d.comm, counts)

    def snapshot(self) -> dict:
        """Edge columns of a network snapshot (CSR order). Local."""
        return {"edge_target": self.d.edge_targets(), "edge_strength": self.eta}
