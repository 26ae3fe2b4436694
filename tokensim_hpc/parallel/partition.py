"""The parallel Hilbert sort: each rank gets one contiguous block of the global order.

The global order of agents is by (Hilbert key, global id); ids are unique,
so the order is total and does not depend on the rank count. Rank r owns
global positions [cut[r], cut[r+1]). The cut points come from weights
(all 1 for now: equal counts), and the agent at each cut is found exactly by
bisection over the key space with one small ``Allreduce`` of counts per step,
so no rank ever holds more than its own agents. One ``Alltoallv`` per column
then moves every agent to its owner.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .exchange import alltoallv_columns

_KEY_MAX = np.iinfo(np.uint64).max
_GID_MAX = np.iinfo(np.int64).max


def balanced_cuts(n_total: int, size: int) -> np.ndarray:
    """Global positions where ranks 1..size-1 start, for equal weights."""
    return np.array([(r * n_total) // size for r in range(1, size)], dtype=np.int64)


def _allreduce_counts(comm, local: np.ndarray) -> np.ndarray:
    out = np.asarray(local, dtype=np.int64).copy()
    comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
    return out


def _find_cut_elements(comm, key, gid, cuts):
    """(key, gid) of the element at each global position in ``cuts``. Collective.

    ``key`` and ``gid`` are sorted locally by (key, gid). For a cut c the
    element is the smallest key K with count(key <= K) > c, and among the
    elements with key K the one with the (c - count(key < K))-th smallest gid.
    Every rank runs the same number of steps, since the loop condition is
    computed from reduced counts.
    """
    lo = np.zeros(len(cuts), dtype=np.uint64)
    hi = np.full(len(cuts), _KEY_MAX, dtype=np.uint64)
    while np.any(lo < hi):
        mid = lo + (hi - lo) // np.uint64(2)
        le = _allreduce_counts(comm, np.searchsorted(key, mid, side="right"))
        above = le > cuts
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid + np.uint64(1))
    cut_key = lo
    below = _allreduce_counts(comm, np.searchsorted(key, cut_key, side="left"))
    rank_in_ties = cuts - below
    cut_gid = np.full(len(cuts), -1, dtype=np.int64)
    if np.any(rank_in_ties > 0):
        # Equal Hilbert keys straddle a cut (same cell): bisect on the global id.
        first = np.searchsorted(key, cut_key, side="left")
        last = np.searchsorted(key, cut_key, side="right")
        glo = np.zeros(len(cuts), dtype=np.int64)
        ghi = np.full(len(cuts), _GID_MAX, dtype=np.int64)
        while np.any(glo < ghi):
            gmid = glo + (ghi - glo) // 2
            local = [np.searchsorted(gid[a:b], g, side="right")
                     for a, b, g in zip(first, last, gmid, strict=False)]
            le = _allreduce_counts(comm, local)
            above = le > rank_in_ties
            ghi = np.where(above, gmid, ghi)
            glo = np.where(above, glo, gmid + 1)
        cut_gid = np.where(rank_in_ties > 0, glo, -1)
    return cut_key, cut_gid


def _local_split(key, gid, cut_key, cut_gid) -> np.ndarray:
    """Local index of the first element >= each cut element, in (key, gid) order."""
    first = np.searchsorted(key, cut_key, side="left")
    last = np.searchsorted(key, cut_key, side="right")
    return np.array([a + np.searchsorted(gid[a:b], g, side="left")
                     for a, b, g in zip(first, last, cut_gid, strict=False)], dtype=np.int64)


def hilbert_partition(comm, key: np.ndarray, gid: np.ndarray, columns: dict) -> dict:
    """Move every agent to the rank that owns its block of the global order. Collective.

    Parameters
    ----------
    key : uint64 array
        Hilbert keys of this rank's agents (any subset of all agents).
    gid : int64 array
        Their global ids (unique over all ranks).
    columns : dict of name -> array
        Further per-agent columns that travel with the agents.

    Returns
    -------
    dict
        ``key``, ``gid`` and every column, now this rank's block of the
        global (key, gid) order, sorted; plus ``offset`` (global position of
        this rank's first agent), ``n_total`` and ``cuts`` (start of every rank).
    """
    size = comm.size
    order = np.lexsort((gid, key))
    key, gid = key[order], gid[order]
    columns = {name: col[order] for name, col in columns.items()}
    n_total = int(comm.allreduce(int(key.shape[0]), op=MPI.SUM))
    cuts = balanced_cuts(n_total, size)
    if size > 1:
        cut_key, cut_gid = _find_cut_elements(comm, key, gid, cuts)
        split = _local_split(key, gid, cut_key, cut_gid)
        bounds = np.concatenate(([0], split, [key.shape[0]]))
        send_counts = np.diff(bounds)
        moved = alltoallv_columns(comm, {"key": key, "gid": gid, **columns}, send_counts)
        # Chunks arrive sorted per source rank; one local sort merges them.
        order = np.lexsort((moved["gid"], moved["key"]))
        moved = {name: col[order] for name, col in moved.items()}
    else:
        moved = {"key": key, "gid": gid, **columns}
    starts = np.concatenate(([0], cuts, [n_total]))
    moved["offset"] = int(starts[comm.rank])
    moved["n_total"] = n_total
    moved["cuts"] = starts
    assert moved["key"].shape[0] == starts[comm.rank + 1] - starts[comm.rank]
    return moved
