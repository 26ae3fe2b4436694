"""Numpy twin of ``cython_kernels/formation.pyx`` (same arguments, same results).

``edge_strengths`` is vectorised in the kernel's order of operations.
``form_edges`` is vectorised over the rows and steps through the places
in a row (each decision depends on the ones before it in the row).
"""

import numpy as np

from . import rng

STREAM_FORM = 7
DRAWS_PER_SLOT = 4


def edge_decay(indptr, indices, x, y, decay, d_ref2, out):
    """Numpy twin of ``formation.edge_decay``."""
    n = indptr.shape[0] - 1
    if indptr[-1] == 0:
        return
    src = np.repeat(np.arange(n), np.diff(indptr))
    j = indices.astype(np.int64)
    dx = x[j] - x[src]
    dy = y[j] - y[src]
    d2 = dx * dx + dy * dy
    out[:] = (decay * (d2 / (d2 + d_ref2))).astype(np.float32)


def edge_strengths(indptr, indices, s, edge_decay, eta, growth):
    """Numpy twin of ``formation.edge_strengths``."""
    n = indptr.shape[0] - 1
    if indptr[-1] == 0:
        return
    si = np.repeat(s[:n], np.diff(indptr))
    v = eta + growth * (1.0 - np.abs(si - s[indices])) - edge_decay.astype(np.float64)
    eta[:] = np.minimum(np.maximum(v, 0.0), 1.0)


def _uniform(seed, gid, tick, draw):
    out = np.empty(gid.shape[0])
    rng.uniform(seed, gid, tick, STREAM_FORM, draw, out)
    return out


def _padded(indptr, rows, values, fill):
    """(len(rows), max degree) matrix of each row's values, padded with ``fill``."""
    degree = indptr[rows + 1] - indptr[rows]
    width = int(degree.max(initial=0))
    out = np.full((rows.shape[0], width), fill, dtype=values.dtype)
    for c in range(width):  # one pass per place in a row, not per agent
        has = degree > c
        out[has, c] = values[indptr[rows[has]] + c]
    return out


def form_edges(indptr, indices, slot_gid, x, y, ghost_gid, ghost_x, ghost_y, target, hint,
               eta, eta_min, eta0, p_long, n_total, seed, tick, counts):
    """Numpy twin of ``formation.form_edges``: vectorised over the rows, one step per
    place in a row (each row's decisions depend on its earlier places only)."""
    n = indptr.shape[0] - 1
    if n == 0 or indptr[-1] == 0:
        return
    rows = np.arange(n)
    degree = np.diff(indptr)
    # The friend of each row: its strongest edge not below eta_min (the first of equals).
    strength = _padded(indptr, rows, np.where(eta >= eta_min, eta, -np.inf), -np.inf)
    has_friend = np.isfinite(strength).any(axis=1)
    best = indptr[:-1] + np.argmax(strength, axis=1)
    friend = np.where(has_friend, indices[np.minimum(best, indptr[-1] - 1)], -1).astype(np.int64)
    me = slot_gid[:n]
    # The friends' own rows (before any change): ids and positions.
    owned_friend = (friend >= 0) & (friend < n)
    f_owned = np.where(owned_friend, friend, 0)
    f_slots = _padded(indptr, f_owned, indices.astype(np.int64), -1)
    width = max(f_slots.shape[1], ghost_gid.shape[0])
    cand_gid = np.full((n, width), -1, dtype=np.int64)
    cand_x, cand_y = np.zeros((n, width)), np.zeros((n, width))
    valid = f_slots >= 0
    k_own = f_slots.shape[1]
    sl = np.where(valid, f_slots, 0)
    cand_gid[:, :k_own] = np.where(valid & owned_friend[:, None], slot_gid[sl], -1)
    cand_x[:, :k_own] = x[sl]
    cand_y[:, :k_own] = y[sl]
    ghost = friend >= n
    if ghost.any():
        g = friend[ghost] - n
        k = ghost_gid.shape[0]
        cand_gid[ghost] = -1
        cand_gid[ghost, :k] = ghost_gid[:, g].T
        cand_x[ghost, :k] = ghost_x[:, g].T
        cand_y[ghost, :k] = ghost_y[:, g].T
    current = _padded(indptr, rows, target, np.int64(-2))  # each row's targets as they change
    for c in range(int(degree.max())):
        e_all = indptr[:-1] + c
        live = (degree > c)
        weak = np.zeros(n, dtype=bool)
        weak[live] = eta[e_all[live]] < eta_min
        r = np.flatnonzero(weak)
        if r.size == 0:
            continue
        draw = DRAWS_PER_SLOT * c
        long_range = ~has_friend[r] | (_uniform(seed, me[r], tick, draw) < p_long)
        cand = np.full(r.shape[0], -1, dtype=np.int64)
        cand_hint = np.full(r.shape[0], -1, dtype=np.int32)  # unknown unless found below
        # Long-range: the first of three draws that is neither i nor a neighbour.
        lr = np.flatnonzero(long_range)
        open_ = lr
        for attempt in range(1, 4):
            if open_.size == 0:
                break
            g = np.minimum((_uniform(seed, me[r[open_]], tick, draw + attempt)
                            * float(n_total)).astype(np.int64), n_total - 1)
            ok = (g != me[r[open_]]) & ~(current[r[open_]] == g[:, None]).any(axis=1)
            cand[open_[ok]] = g[ok]
            open_ = open_[~ok]
        counts[0] += int(np.count_nonzero(cand[lr] >= 0))
        # Friend of a friend: the nearest (then smaller id) that is neither i nor a neighbour.
        ff = np.flatnonzero(~long_range)
        if ff.size:
            rr = r[ff]
            g = cand_gid[rr]
            ok = (g >= 0) & (g != me[rr][:, None])
            ok &= ~(g[:, :, None] == current[rr][:, None, :]).any(axis=2)
            dx = cand_x[rr] - x[rr][:, None]
            dy = cand_y[rr] - y[rr][:, None]
            d2 = np.where(ok, dx * dx + dy * dy, np.inf)
            nearest = d2 == d2.min(axis=1)[:, None]
            pick_g = np.where(ok & nearest, g, np.iinfo(np.int64).max).min(axis=1)
            found = ok.any(axis=1)
            cand[ff[found]] = pick_g[found]
            # An owned friend's pick is one of its slots: owned, or a ghost (-2).
            col = np.argmax(ok & nearest & (g == pick_g[:, None]), axis=1)
            via_owned = found & owned_friend[rr] & (col < k_own)
            slot = f_slots[rr[via_owned], col[via_owned]]
            cand_hint[ff[via_owned]] = np.where(slot < n, slot, -2).astype(np.int32)
            counts[1] += int(np.count_nonzero(found))
        counts[2] += int(np.count_nonzero(cand < 0))
        got = cand >= 0
        e = e_all[r[got]]
        target[e] = cand[got]
        hint[e] = cand_hint[got]
        eta[e] = eta0
        current[r[got], c] = cand[got]


def row_tables(indices, rows, slot_gid, x, y, out_gid, out_x, out_y):
    """Numpy twin of ``formation.row_tables``."""
    k = out_gid.shape[0]
    slots = indices.reshape(-1, k)[rows].T if rows.size else np.zeros((k, 0), dtype=np.int64)
    out_gid[:] = slot_gid[slots]
    out_x[:] = x[slots]
    out_y[:] = y[slots]


def gather_ids(indices, slot_gid, out):
    """Numpy twin of ``formation.gather_ids``."""
    out[:] = slot_gid[indices]
