"""The parallel Hilbert sort: each rank gets one contiguous block of the global order.

The global order of agents is by (Hilbert key, global id); ids are unique,
so the order is total and does not depend on the rank count. Rank r owns
global positions [cut[r], cut[r+1]). The cut points come from integer weights
(all 1 for now: equal counts), and the agent at each cut is found exactly by
bisection over the key space with one small ``Allreduce`` of sums per step,
so no rank ever holds more than its own agents. One ``Alltoallv`` per column
then moves every agent to its owner.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .exchange import alltoallv_columns

_KEY_MAX = np.iinfo(np.uint64).max
_GID_MAX = np.iinfo(np.int64).max


def balanced_cuts(total_weight: int, size: int) -> np.ndarray:
    """Weight thresholds T_r = floor(r W / size) where ranks 1..size-1 start."""
    return np.array([(r * total_weight) // size for r in range(1, size)], dtype=np.int64)


def _allreduce_counts(comm, local) -> np.ndarray:
    out = np.asarray(local, dtype=np.int64).copy()
    comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
    return out


def _find_cut_elements(comm, key, gid, cum, thresholds):
    """(key, gid) of the first element whose inclusive cumulative weight exceeds each threshold.

    Collective. ``key`` and ``gid`` are sorted locally by (key, gid);
    ``cum[i]`` is the weight of the first i local elements (``cum[0] = 0``).
    For a threshold T the element has the smallest key K with W(key <= K) > T
    and, among the elements with key K, the smallest id G with
    W(key < K) + W(key == K, id <= G) > T. With unit weights this is the
    element at global position T. Every rank runs the same number of
    steps, since the loop condition is computed from reduced sums.
    """
    lo = np.zeros(len(thresholds), dtype=np.uint64)
    hi = np.full(len(thresholds), _KEY_MAX, dtype=np.uint64)
    while np.any(lo < hi):
        mid = lo + (hi - lo) // np.uint64(2)
        le = _allreduce_counts(comm, cum[np.searchsorted(key, mid, side="right")])
        above = le > thresholds
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid + np.uint64(1))
    cut_key = lo
    first = np.searchsorted(key, cut_key, side="left")
    last = np.searchsorted(key, cut_key, side="right")
    below = _allreduce_counts(comm, cum[first])
    # Weight still to cover inside the group of equal keys (the same Hilbert cell).
    need = thresholds - below
    tied = _allreduce_counts(comm, last - first) > 1
    cut_gid = np.full(len(thresholds), -1, dtype=np.int64)
    if np.any(tied):
        # Equal keys straddle a cut: bisect on the global id within the group.
        glo = np.zeros(len(thresholds), dtype=np.int64)
        ghi = np.full(len(thresholds), _GID_MAX, dtype=np.int64)
        while np.any(glo < ghi):
            gmid = glo + (ghi - glo) // 2
            local = [cum[a + np.searchsorted(gid[a:b], g, side="right")] - cum[a]
                     for a, b, g in zip(first, last, gmid, strict=True)]
            le = _allreduce_counts(comm, local)
            above = le > need
            ghi = np.where(above, gmid, ghi)
            glo = np.where(above, glo, gmid + 1)
        cut_gid = np.where(tied, glo, -1)
    return cut_key, cut_gid


def _local_split(key, gid, cut_key, cut_gid) -> np.ndarray:
    """Local index of the first element >= each cut element, in (key, gid) order."""
    first = np.searchsorted(key, cut_key, side="left")
    last = np.searchsorted(key, cut_key, side="right")
    return np.array([a + np.searchsorted(gid[a:b], g, side="left")
                     for a, b, g in zip(first, last, cut_gid, strict=False)], dtype=np.int64)


def hilbert_partition(comm, key: np.ndarray, gid: np.ndarray, columns: dict,
                      weights: np.ndarray | None = None) -> dict:
    """Move every agent to the rank that owns its block of the global order. Collective.

    Parameters
    ----------
    key : uint64 array
        Hilbert keys of this rank's agents (any subset of all agents).
    gid : int64 array
        Their global ids (unique over all ranks).
    columns : dict of name -> array
        Further per-agent columns that travel with the agents.
    weights : int64 array, optional
        Non-negative integer work of each agent (default: 1 each). Rank r
        starts at the first agent, in global order, whose inclusive
        cumulative weight exceeds floor(r W / size); weights travel with
        the agents (returned as ``weights``).

    Returns
    -------
    dict
        ``key``, ``gid`` and every column, now this rank's block of the
        global (key, gid) order, sorted; plus ``offset`` (global position of
        this rank's first agent), ``n_total`` and ``cuts`` (global position
        where every rank starts, and n_total at the end).
    """
    size = comm.size
    order = np.lexsort((gid, key))
    key, gid = key[order], gid[order]
    columns = {name: col[order] for name, col in columns.items()}
    if weights is None:
        cum = np.arange(key.shape[0] + 1, dtype=np.int64)
    else:
        if np.any(weights < 0):
            raise ValueError("partition weights must be non-negative")
        columns["weights"] = np.asarray(weights, dtype=np.int64)[order]
        cum = np.concatenate(([0], np.cumsum(columns["weights"])))
    if size > 1:
        thresholds = balanced_cuts(int(comm.allreduce(int(cum[-1]), op=MPI.SUM)), size)
        cut_key, cut_gid = _find_cut_elements(comm, key, gid, cum, thresholds)
        del cum
        split = _local_split(key, gid, cut_key, cut_gid)
        bounds = np.concatenate(([0], split, [key.shape[0]]))
        send_counts = np.diff(bounds)
        moved = alltoallv_columns(comm, {"key": key, "gid": gid, **columns}, send_counts)
        # Chunks arrive sorted per source rank; one local sort merges them.
        order = np.lexsort((moved["gid"], moved["key"]))
        moved = {name: col[order] for name, col in moved.items()}
    else:
        moved = {"key": key, "gid": gid, **columns}
    n_local = int(moved["key"].shape[0])
    counts = np.array(comm.allgather(n_local), dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)))
    moved["offset"] = int(starts[comm.rank])
    moved["n_total"] = int(starts[-1])
    moved["cuts"] = starts
    return moved
