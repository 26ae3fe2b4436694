"""Adaptive clustering (paper 2.1): connected components of c_ij over the network.

c_ij = 1 when ||mu_i - mu_j|| < theta for an edge i -> j, with mu_i an
agent's current strategy vector (here its sentiment and the log of its order
fraction). Clusters are the connected components of the undirected graph of
those edges, across ranks, found by label propagation: every agent starts
with its global id as label. Each rank finds the components of its own part
of the graph (owned and ghost slots; scipy's ``connected_components``, once
per call), and every local component starts with its smallest label. Then
each round sends the ghosts' labels back to the owners
(``HaloPlan.reduce_ghosts``) and the owners' labels to the ghost slots (halo
exchange), gives every local component the smallest label among its boundary
slots (ghosts, and owned agents other ranks hold as ghosts: only those and
their components are touched in a round), and stops when no rank lowered a
label. The rounds count rank crossings, not path lengths. A cluster's label
is the smallest id in it, whatever the partition.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

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
    kernels : namespace with ``clusters`` (``kept_edges``, ``group_min``)
    max_rounds : int
        Rounds of label propagation allowed before the run stops with an error.
    """

    def __init__(self, domain, theta, kernels, max_rounds=10_000):
        self.d = domain
        self.kernels = kernels.clusters
        self.theta = float(theta)
        self.max_rounds = int(max_rounds)
        self.directory = domain.directory
        self.labels = domain.gid.copy()
        self.rounds = 0
        self._parts = None  # the last find's local components, for sizes

    def find(self, features: np.ndarray) -> np.ndarray:
        """Cluster label (smallest global id in the cluster) of every owned agent.
        ``features`` has shape (n_owned, F). Collective."""
        d = self.d
        n, n_slots = d.n_owned, d.n_owned + d.halo.n_ghost
        cols = np.zeros((features.shape[1], n_slots))
        cols[:, :n] = features.T
        d.halo.exchange(*cols)
        kept = np.empty(n + 1, dtype=np.int64)
        kept_indices = np.empty(int(d.indptr[-1]), dtype=np.int32)
        m = self.kernels.kept_edges(d.indptr, d.indices, cols, self.theta * self.theta, kept,
                                    kept_indices)
        del cols
        # Components of the local part of the graph (owned and ghost slots), once.
        indptr = np.concatenate((kept, np.full(n_slots - n, kept[-1])))
        graph = csr_matrix((np.ones(m, dtype=np.int8), kept_indices[:m], indptr),
                           shape=(n_slots, n_slots))
        del kept_indices
        n_comp, comp = connected_components(graph, directed=False)
        comp = comp.astype(np.int64)
        del graph
        label = np.zeros(n_slots)  # ids below 2**53 are exact in float64
        label[:n] = d.gid
        d.halo.exchange(label)
        # Every local component starts with its smallest id (ghosts carry their owners').
        comp_min = np.full(n_comp, np.inf)
        self.kernels.group_min(comp, label, comp_min)
        # Only boundary slots (ghosts, and owned agents other ranks hold as ghosts) carry
        # labels between ranks: the rounds work on them and their components alone.
        boundary = np.concatenate((d.halo.sent_agents, np.arange(n, n_slots, dtype=np.int64)))
        b_comp = comp[boundary]
        rounds = 0
        while True:
            # Owners take the smallest label their agents' ghost copies hold, and the
            # ghosts their owners' labels; then every component with a boundary slot
            # takes the smallest of its boundary labels.
            label[boundary] = comp_min[b_comp]
            d.halo.reduce_ghosts(label, np.minimum)
            d.halo.exchange(label)
            changed = self.kernels.group_min(b_comp, label[boundary], comp_min)
            rounds += 1
            if allreduce_max_int(d.comm, changed) == 0:
                break
            if rounds >= self.max_rounds:
                raise RuntimeError(f"clusters not settled after {self.max_rounds} rounds")
        self.rounds = rounds
        self.labels = comp_min[comp[:n]].astype(np.int64)
        self._parts = (comp[:n], comp_min, b_comp)
        return self.labels

    def sizes(self, top: int = 5):
        """Sizes of the last :meth:`find`'s clusters, once per find (it frees the find's
        local components). Collective.

        Returns (number of clusters, labels of the ``top`` largest, their sizes),
        the largest first, ties by smaller label; fewer than ``top`` if there are
        fewer clusters.

        Counted by local component: a component without boundary slots is a whole
        cluster, counted here; the others send (label, owned agents) to the owner of
        the label, which adds up each label's parts. Each rank then keeps its ``top``
        largest, and those few pairs are gathered.
        """
        if self._parts is None:
            raise RuntimeError("Clusters.sizes needs a find first")
        d = self.d
        comp, comp_min, b_comp = self._parts
        self._parts = None
        n_clusters = int(allreduce_sum_int(d.comm, np.array([np.sum(self.labels == d.gid)]))[0])
        count = np.bincount(comp, minlength=comp_min.shape[0])
        crossing = np.zeros(comp_min.shape[0], dtype=bool)
        crossing[b_comp] = True
        label = comp_min.astype(np.int64)
        whole = np.flatnonzero(~crossing & (count > 0))
        part = np.flatnonzero(crossing & (count > 0))
        owner = self.directory.lookup(label[part])
        order = part[np.argsort(owner, kind="stable")]
        counts = np.bincount(owner, minlength=d.comm.size).astype(np.int64)
        got_label = alltoallv(d.comm, label[order], counts)
        got_count = alltoallv(d.comm, count[order], counts)
        merged, where = np.unique(got_label, return_inverse=True)
        merged_count = np.zeros(merged.shape[0], dtype=np.int64)
        np.add.at(merged_count, where, got_count)
        best_label, best_size = _largest(np.concatenate((label[whole], merged)),
                                         np.concatenate((count[whole], merged_count)), top)
        # A few (label, size) pairs per rank: small metadata, a pickling allgather.
        pairs = [pair for chunk in d.comm.allgather(list(zip(best_label.tolist(),
                                                               best_size.tolist(), strict=True)))
                 for pair in chunk]
        pairs.sort(key=lambda ls: (-ls[1], ls[0]))
        pairs = pairs[:top]
        return (n_clusters, np.array([lb for lb, _ in pairs], dtype=np.int64),
                np.array([sz for _, sz in pairs], dtype=np.int64))


def _largest(label: np.ndarray, size: np.ndarray, top: int):
    """The ``top`` (label, size) pairs of largest size, ties by smaller label (labels
    unique), largest first. Linear in the number of pairs: only the sizes at or above
    the top-th largest are sorted."""
    if top <= 0:
        return label[:0], size[:0]
    if size.shape[0] > top:
        threshold = np.partition(size, size.shape[0] - top)[size.shape[0] - top]
        above = np.flatnonzero(size > threshold)
        tied = np.flatnonzero(size == threshold)
        need = top - above.shape[0]
        if tied.shape[0] > need:
            tied = tied[np.argpartition(label[tied], need - 1)[:need]] if need > 0 else tied[:0]
        keep = np.concatenate((above, tied))
        label, size = label[keep], size[keep]
    order = np.lexsort((label, -size))[:top]
    return label[order], size[order]
