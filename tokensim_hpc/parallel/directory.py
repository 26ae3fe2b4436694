"""Which rank owns a global id: a distributed directory, block-distributed by id.

Directory rank d keeps the owner of ids in its block [lo_d, hi_d); owners
register their ids, and a lookup is one round trip of ``Alltoallv``. No rank
holds the owners of all N agents.
"""

from __future__ import annotations

import numpy as np

from .exchange import alltoallv, exchange_counts


class Directory:
    """Owner rank of every global id in 0..n_total-1. Construction is collective."""

    def __init__(self, comm, owned_gid: np.ndarray, n_total: int):
        self.comm = comm
        self.n_total = int(n_total)
        size, rank = comm.size, comm.rank
        self.lo = self._block_start(rank)
        self.hi = self._block_start(rank + 1)
        dest = self.block_of(owned_gid)
        order = np.argsort(dest, kind="stable")
        send_counts = np.bincount(dest, minlength=size).astype(np.int64)
        recv_counts = exchange_counts(comm, send_counts)
        got = alltoallv(comm, owned_gid[order], send_counts, recv_counts)
        self.owner = np.full(self.hi - self.lo, -1, dtype=np.int32)
        self.owner[got - self.lo] = np.repeat(np.arange(size, dtype=np.int32), recv_counts)

    def _block_start(self, d: int) -> int:
        return -(-d * self.n_total // self.comm.size)  # ceil(d * N / size)

    def block_of(self, gid: np.ndarray) -> np.ndarray:
        """Directory rank of each id. Local."""
        return ((np.asarray(gid, dtype=np.int64) * self.comm.size) // self.n_total).astype(np.int64)

    def lookup(self, gid: np.ndarray) -> np.ndarray:
        """Owner rank of each id in ``gid`` (any order, duplicates allowed). Collective."""
        gid = np.asarray(gid, dtype=np.int64)
        dest = self.block_of(gid)
        order = np.argsort(dest, kind="stable")
        send_counts = np.bincount(dest, minlength=self.comm.size).astype(np.int64)
        recv_counts = exchange_counts(self.comm, send_counts)
        asked = alltoallv(self.comm, gid[order], send_counts, recv_counts)
        answers = self.owner[asked - self.lo]
        owners_sorted = alltoallv(self.comm, answers, recv_counts, send_counts)
        owners = np.empty_like(owners_sorted)
        owners[order] = owners_sorted
        if np.any(owners < 0):
            raise RuntimeError("directory lookup of an id that no rank owns")
        return owners
