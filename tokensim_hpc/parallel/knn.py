"""The exact k-nearest-neighbour graph of all agents, built in parallel.

Each rank first finds the k nearest of its own agents among its own agents.
That gives every agent a radius within which its true k nearest must lie.
An agent whose radius reaches cells of the plane occupied by other ranks is
sent to those ranks as a query; they answer with their nearest points within
the radius, and the candidates are merged in (distance, id) order. Positions
are thus exchanged only near partition boundaries, and the result equals
the serial graph exactly (same distances, ties by smaller id).
"""

from __future__ import annotations

import numpy as np

from .exchange import allgatherv, alltoallv, alltoallv_columns, exchange_counts

# Agents per cell of the coarse occupancy grid that tells which ranks are near.
_AGENTS_PER_CELL = 64
_MAX_CELLS_PER_SIDE = 2048


def _coarse_cells(x, y, box, side):
    xmin, ymin, xmax, ymax = box
    sx = side / (xmax - xmin) if xmax > xmin else 0.0
    sy = side / (ymax - ymin) if ymax > ymin else 0.0
    cx = np.clip(np.floor((x - xmin) * sx), 0, side - 1).astype(np.int64)
    cy = np.clip(np.floor((y - ymin) * sy), 0, side - 1).astype(np.int64)
    return cx, cy, sx, sy


def _cell_owners(comm, cells, n_cells):
    """CSR: for every coarse cell, the ranks that own agents in it. Collective."""
    mine = np.unique(cells)
    all_cells = allgatherv(comm, mine)
    counts = np.array(comm.allgather(int(mine.shape[0])), dtype=np.int64)
    owners = np.repeat(np.arange(comm.size, dtype=np.int64), counts)
    order = np.argsort(all_cells, kind="stable")
    ptr = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(np.bincount(all_cells, minlength=n_cells), out=ptr[1:])
    return ptr, owners[order]


def _query_targets(comm, x, y, kth2, box, side, ptr, owners, first):
    """(local agent, rank) pairs: agents whose k-NN ball reaches another rank's cells.

    ``x``, ``y``, ``kth2`` are a slice of the owned agents starting at index ``first``.
    """
    rank, size = comm.rank, comm.size
    mine_only = (np.diff(ptr) == 1) & (owners[np.minimum(ptr[:-1], len(owners) - 1)] == rank) \
        if len(owners) else np.zeros(side * side, dtype=bool)
    finite = np.isfinite(kth2)
    # A slightly enlarged radius keeps the cell range conservative under rounding.
    r = np.where(finite, np.sqrt(np.where(finite, kth2, 0.0)) * (1 + 1e-9) + 1e-300, 0.0)
    _, _, sx, sy = _coarse_cells(x[:0], y[:0], box, side)
    x0 = np.clip(np.floor((x - r - box[0]) * sx), 0, side - 1).astype(np.int64)
    x1 = np.clip(np.floor((x + r - box[0]) * sx), 0, side - 1).astype(np.int64)
    y0 = np.clip(np.floor((y - r - box[1]) * sy), 0, side - 1).astype(np.int64)
    y1 = np.clip(np.floor((y + r - box[1]) * sy), 0, side - 1).astype(np.int64)
    single = finite & (x0 == x1) & (y0 == y1)
    single &= mine_only[x0 * side + y0]
    cand = np.flatnonzero(finite & ~single)
    # Expand each candidate agent into the cells its ball's bounding box covers.
    wx = x1[cand] - x0[cand] + 1
    wy = y1[cand] - y0[cand] + 1
    n_cells = wx * wy
    agent = np.repeat(cand, n_cells)
    within = np.arange(int(n_cells.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(n_cells) - n_cells, n_cells)
    wy_rep = np.repeat(wy, n_cells)
    cell = (x0[agent] + within // wy_rep) * side + (y0[agent] + within % wy_rep)
    keep = ~mine_only[cell]
    agent, cell = agent[keep], cell[keep]
    n_owners = ptr[cell + 1] - ptr[cell]
    agent = np.repeat(agent, n_owners)
    starts = np.repeat(ptr[cell], n_owners)
    offs = np.arange(int(n_owners.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(n_owners) - n_owners, n_owners)
    dest = owners[starts + offs]
    # Agents without k local neighbours ask every other rank.
    lonely = np.flatnonzero(~finite)
    others = np.array([q for q in range(size) if q != rank], dtype=np.int64)
    agent = np.concatenate((agent, np.repeat(lonely, len(others))))
    dest = np.concatenate((dest, np.tile(others, len(lonely))))
    keep = dest != rank
    pair = np.unique(agent[keep] * size + dest[keep])
    return pair // size + first, pair % size


def distributed_knn(comm, x, y, gid, k, box, knn_grid, chunk=1 << 16):
    """Global ids of the k nearest agents of every owned agent. Collective.

    Parameters
    ----------
    x, y, gid : arrays of this rank's agents (its block of the Hilbert order).
    k : int
        Neighbours per agent (k < total number of agents).
    box : (xmin, ymin, xmax, ymax)
        Global bounding box of all positions (the same on every rank).
    knn_grid : callable
        The local k-NN kernel (``tokensim_hpc._kernels.knn.knn_grid``).

    Returns
    -------
    neighbour_gid : int64 array of shape (n_local, k)
        Neighbour ids of each agent, nearest first, ties by smaller id.
    neighbour_local : int32 array of shape (n_local, k)
        The neighbour's local index where it is an owned agent found by the
        local search, -1 where it must be resolved by id (rows merged with
        remote answers). The halo plan takes it as its starting edge table.
    """
    n = x.shape[0]
    # Queries go in chunks so the kernel's (chunk, k) outputs stay small; the
    # kernel rebuilds its grid per call, so chunks are at least n/4 long.
    chunk = max(chunk, n // 4 + 1)
    col_gid = np.empty((n, k), dtype=np.int64)
    col_local = np.empty((n, k), dtype=np.int32)
    kth2 = np.empty(n)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        idx = np.empty((e - s, k), dtype=np.int64)
        d2 = np.empty((e - s, k))
        cnt = np.empty(e - s, dtype=np.int32)
        qr2 = np.full(e - s, np.inf)
        knn_grid(x, y, gid, x[s:e], y[s:e], gid[s:e], qr2, k, idx, d2, cnt)
        col_gid[s:e] = gid[np.maximum(idx, 0)]
        col_gid[s:e][idx < 0] = -1  # ranks with fewer than k+1 agents
        col_local[s:e] = idx
        kth2[s:e] = d2[:, k - 1]
    if comm.size == 1:
        return col_gid, col_local

    total = int(comm.allreduce(n))
    side = int(min(_MAX_CELLS_PER_SIDE, max(1, np.sqrt(total / _AGENTS_PER_CELL))))
    cx, cy, _, _ = _coarse_cells(x, y, box, side)
    ptr, owners = _cell_owners(comm, cx * side + cy, side * side)
    del cx, cy
    pieces = [_query_targets(comm, x[s:e], y[s:e], kth2[s:e], box, side, ptr, owners, s)
              for s, e in ((s, min(n, s + chunk)) for s in range(0, max(n, 1), chunk))]
    agent = np.concatenate([p[0] for p in pieces])
    dest = np.concatenate([p[1] for p in pieces])
    del pieces

    # Queries to the ranks whose cells the balls reach, answered with their k nearest.
    send_counts = np.bincount(dest, minlength=comm.size).astype(np.int64)
    order = np.argsort(dest, kind="stable")
    agent = agent[order]
    q = alltoallv_columns(comm, {"xyr": np.stack((x[agent], y[agent], kth2[agent]), axis=1),
                                 "gid": gid[agent]}, send_counts)
    nq = q["gid"].shape[0]
    idx = np.empty((nq, k), dtype=np.int64)
    d2 = np.empty((nq, k))
    cnt = np.empty(nq, dtype=np.int32)
    knn_grid(x, y, gid, np.ascontiguousarray(q["xyr"][:, 0]), np.ascontiguousarray(q["xyr"][:, 1]),
             q["gid"], np.ascontiguousarray(q["xyr"][:, 2]), k, idx, d2, cnt)
    reply_gid = np.full(idx.shape, -1, dtype=np.int64)
    found = idx >= 0  # a rank with fewer than k agents (or none) answers with fewer
    reply_gid[found] = gid[idx[found]]
    recv_counts = exchange_counts(comm, send_counts)
    back_gid = alltoallv(comm, reply_gid, recv_counts, send_counts)
    back_d2 = alltoallv(comm, d2, recv_counts, send_counts)

    # Merge: local candidates of the queried agents plus every remote answer.
    rows = np.unique(agent)
    loc_gid = col_gid[rows]
    by_gid = np.argsort(gid, kind="stable")
    safe = by_gid[np.searchsorted(gid[by_gid], np.maximum(loc_gid, gid.min(initial=0)))] \
        if n else np.zeros(loc_gid.shape, dtype=np.int64)
    dx = x[rows][:, None] - x[safe]
    dy = y[rows][:, None] - y[safe]
    loc_d2 = dx * dx + dy * dy  # the kernel's formula, so distances compare exactly
    m_row = np.concatenate((np.repeat(rows, k), np.repeat(agent, k)))
    m_gid = np.concatenate((loc_gid.ravel(), back_gid.ravel()))
    m_d2 = np.concatenate((loc_d2.ravel(), back_d2.ravel()))
    valid = m_gid >= 0
    m_row, m_gid, m_d2 = m_row[valid], m_gid[valid], m_d2[valid]
    order = np.lexsort((m_gid, m_d2, m_row))
    m_row, m_gid = m_row[order], m_gid[order]
    first = np.searchsorted(m_row, rows, side="left")
    take = first[:, None] + np.arange(k)
    col_gid[rows] = m_gid[take]
    col_local[rows] = -1
    return col_gid, col_local
