"""The agent network on one rank: CSR over owned rows, plus its generators.

Rows are the owned agents in local (global Hilbert) order; columns are
global ids until the halo plan maps them to local slots (owned, then ghost).
Generators are deterministic functions of the seed and the agents' ids, so
the global network does not depend on the rank count. Local; no MPI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Random streams of the counter-based generator used by the network.
STREAM_REWIRE = 2
STREAM_TARGET = 3
_MAX_REDRAWS = 64


@dataclass
class LocalNetwork:
    """Directed edges of the owned agents.

    Attributes
    ----------
    indptr : int64 array (n_owned + 1)
        Row pointers.
    weight : float64 array (nnz), or empty
        Edge weight w_ij; empty when every edge weighs ``uniform_weight``
        (then no weight is stored or streamed per edge).
    uniform_weight : float
        The weight of every edge when ``weight`` is empty.
    """

    indptr: np.ndarray
    weight: np.ndarray
    uniform_weight: float = 0.0

    @property
    def n_edges(self) -> int:
        """Number of edges of this rank's rows."""
        return int(self.indptr[-1])

    @classmethod
    def uniform_knn(cls, n_rows: int, k: int) -> LocalNetwork:
        """k out-edges per row, each with weight 1/k (B1's k-NN network), stored as uniform."""
        indptr = np.arange(0, n_rows * k + 1, k, dtype=np.int64)
        return cls(indptr, np.empty(0), uniform_weight=1.0 / k)


def rewire_small_world(neighbour_gid, gid, n_total, p, seed, uniform, neighbour_local=None):
    """Watts-Strogatz rewiring of a k-NN table in place (long-range links).

    Each edge (i, slot j) is rewired with probability ``p`` to a uniformly
    random agent that is neither i nor already a neighbour of i. Every draw
    is keyed by (seed, id of i, slot, attempt), so the result is the same on
    any rank count. An edge that finds no free target in 64 draws stays.

    Parameters
    ----------
    neighbour_gid : int64 array (n, k), modified in place
    gid : int64 array (n,)
    n_total : int
    p : float
    seed : int
    uniform : callable
        ``uniform(seed, gid, tick, stream, draw, out)``, the counter-based kernel.
    neighbour_local : int32 array (n, k), optional, modified in place
        Local indices of the neighbours; set to -1 (resolve by id) where rewired.
    """
    n, k = neighbour_gid.shape
    if p <= 0.0 or n == 0:
        return
    u = np.empty(n)
    for j in range(k):
        uniform(seed, gid, 0, STREAM_REWIRE, j, u)
        pending = np.flatnonzero(u < p)
        for attempt in range(_MAX_REDRAWS):
            if pending.size == 0:
                break
            v = np.empty(pending.size)
            uniform(seed, gid[pending], 0, STREAM_TARGET, j + k * attempt, v)
            target = np.minimum((v * n_total).astype(np.int64), n_total - 1)
            clash = (target == gid[pending]) | np.any(
                neighbour_gid[pending] == target[:, None], axis=1)
            ok = pending[~clash]
            neighbour_gid[ok, j] = target[~clash]
            if neighbour_local is not None:
                neighbour_local[ok, j] = -1
            pending = pending[clash]
