"""Adaptive clustering (paper 2.1): connected components of c_ij over the network.

c_ij = 1 when ||mu_i - mu_j|| < theta for an edge i -> j, with mu_i an
agent's current strategy vector (here its sentiment and the log of its order
fraction). Clusters are the connected components of the undirected graph of
those edges, across ranks, found by label propagation: every agent starts
with its global id as label; each round relaxes labels along the selected
edges locally until nothing changes, sends the owners' labels to the ghost
slots (halo exchange) and the ghosts' proposals back to the owners
(``HaloPlan.reduce_ghosts``), and stops when no rank changed a label.
Within a rank, the components of its part of the graph (scipy's
``connected_components``, once per call) spread a label in one step, so the
rounds count rank crossings, not path lengths. A cluster's label is the
smallest id in it, whatever the partition.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..parallel.directory import Directory
from ..parallel.exchange import alltoallv
from ..parallel.mpi import allreduce_max_int
from ..parallel.reduce import allreduce_sum_int


class Clusters:
    """Clusters of one rank's agents. Construction is collective (a directory of ids).

    Parameters
    ----------
    domain : Domain
    theta : float
        Distance below which an edge joins two agents' clusters.
    max_rounds : int
        Rounds of label propagation allowed before the run stops with an error.
    """

    def __init__(self, domain, theta, max_rounds=10_000):
        self.d = domain
        self.theta = float(theta)
        self.max_rounds = int(max_rounds)
        self.directory = Directory(domain.comm, domain.gid, domain.n_total)
        n = domain.n_owned
        self._src = np.repeat(np.arange(n, dtype=np.int64), np.diff(domain.indptr))
        self._dst = domain.indices.astype(np.int64)
        self.labels = domain.gid.copy()
        self.rounds = 0

    def find(self, features: np.ndarray) -> np.ndarray:
        """Cluster label (smallest global id in the cluster) of every owned agent.
        ``features`` has shape (n_owned, F). Collective."""
        d = self.d
        n, n_slots = d.n_owned, d.n_owned + d.halo.n_ghost
        dist2 = np.zeros(self._src.shape[0])
        for f in np.atleast_2d(features.T):
            col = np.zeros(n_slots)
            col[:n] = f
            d.halo.exchange(col)
            dist2 += (col[self._src] - col[self._dst]) ** 2
        keep = dist2 < self.theta * self.theta
        src, dst = self._src[keep], self._dst[keep]
        # Components of the local part of the graph (owned and ghost slots), once.
        graph = coo_matrix((np.ones(src.shape[0]), (src, dst)), shape=(n_slots, n_slots))
        _, comp = connected_components(graph.tocsr(), directed=False)
        label = np.zeros(n_slots)  # ids below 2**53 are exact in float64
        label[:n] = d.gid
        rounds = 0
        while True:
            d.halo.exchange(label)
            before = label[:n].copy()
            # Every local component takes its smallest label (ghosts carry their owners').
            smallest = np.full(comp.max() + 1 if comp.size else 0, np.inf)
            np.minimum.at(smallest, comp, label)
            label = smallest[comp]
            d.halo.reduce_ghosts(label, np.minimum)
            changed = int(np.any(label[:n] < before))
            rounds += 1
            if allreduce_max_int(d.comm, changed) == 0:
                break
            if rounds >= self.max_rounds:
                raise RuntimeError(f"clusters not settled after {self.max_rounds} rounds")
        self.rounds = rounds
        self.labels = label[:n].astype(np.int64)
        return self.labels

    def sizes(self) -> tuple[int, int]:
        """(number of clusters, size of the largest) of the last :meth:`find`. Collective."""
        d = self.d
        n_clusters = int(allreduce_sum_int(d.comm, np.array([np.sum(self.labels == d.gid)]))[0])
        # Count each label at the rank that owns the agent of that id.
        owner = self.directory.lookup(self.labels)
        order = np.argsort(owner, kind="stable")
        counts = np.bincount(owner, minlength=d.comm.size).astype(np.int64)
        got = alltoallv(d.comm, self.labels[order], counts)
        largest = int(np.unique(got, return_counts=True)[1].max()) if got.size else 0
        return n_clusters, allreduce_max_int(d.comm, largest)
