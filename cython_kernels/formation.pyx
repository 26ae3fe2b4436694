# cython: language_level=3
"""Network formation kernels (paper 2.2): edge strengths, pruning, new edges.

Edges are the CSR rows of the owned agents (row i: the edges i -> j, a
fixed number k per row); every edge has a strength eta in [0, 1].
``edge_strengths`` advances the strengths by one tick; ``form_edges``
replaces the edges that fell below the pruning threshold by new ones. Both
depend only on agents' ids, positions, sentiments and the tick, never on
the partition. Local; no MPI.
"""

from libc.math cimport fabs
from libc.stdint cimport int32_t, int64_t, uint64_t

from _fastmath cimport prefetch_read
from _philox cimport philox_uniform

cdef enum:
    _STREAM_FORM = 7
STREAM_FORM = _STREAM_FORM
# Draws per edge slot of a row: which kind of new edge, then up to three random targets.
DRAWS_PER_SLOT = 4
DEF PREFETCH_EDGES = 256  # how far ahead edge_strengths asks for its neighbours' values


def edge_decay(const int64_t[::1] indptr, const int32_t[::1] indices,
               const double[::1] x, const double[::1] y, double decay, double d_ref2,
               float[::1] out):
    """The distance term of every edge's strength: out[e] = decay * d2 / (d2 + d_ref2)
    (rounded to float32), with d2 the squared distance of the edge's ends in the
    economic space (``x``, ``y`` over owned and ghost slots). It grows with distance
    from 0 to ``decay``, half of it at d = d_ref. Positions do not move, so it is
    computed once per network. Local."""
    cdef Py_ssize_t i, e, j, n = indptr.shape[0] - 1
    cdef double dx, dy, d2
    with nogil:
        for i in range(n):
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                dx = x[j] - x[i]
                dy = y[j] - y[i]
                d2 = dx * dx + dy * dy
                out[e] = <float>(decay * (d2 / (d2 + d_ref2)))


def edge_strengths(const int64_t[::1] indptr, const int32_t[::1] indices,
                   const double[::1] s, const float[::1] edge_decay, double[::1] eta,
                   double growth):
    """One tick of the edge strengths of every owned row. Local.

    For the edge e = i -> j (j an owned or ghost slot of ``s``):

        eta <- clip(eta + growth * U_ij - edge_decay[e], 0, 1)

    with the utility of the connection U_ij = 1 - |s_i - s_j| (agents who
    agree gain from the tie; in [-1, 1]), growth = gamma dt and
    ``edge_decay`` the distance term from :func:`edge_decay` (delta dt
    d^2 / (d^2 + d_ref^2)). Reads one neighbour value per edge; a long-range
    edge's would miss the caches, so each row asks for those of the edges
    PREFETCH_EDGES ahead.
    """
    cdef Py_ssize_t i, e, n = indptr.shape[0] - 1, m = indptr[n]
    cdef double v, si
    cdef const double *values = &s[0] if s.shape[0] else NULL
    with nogil:
        for i in range(n):
            if indptr[i + 1] + PREFETCH_EDGES < m:
                for e in range(indptr[i] + PREFETCH_EDGES, indptr[i + 1] + PREFETCH_EDGES):
                    prefetch_read(values + indices[e], 0, 3)
            si = s[i]
            for e in range(indptr[i], indptr[i + 1]):
                v = eta[e] + growth * (1.0 - fabs(si - s[indices[e]])) - <double>edge_decay[e]
                v = 0.0 if v < 0.0 else v
                eta[e] = 1.0 if v > 1.0 else v


cdef inline bint _in_row(const int64_t[::1] target, Py_ssize_t r0, Py_ssize_t r1,
                         int64_t g) noexcept nogil:
    cdef Py_ssize_t f
    for f in range(r0, r1):
        if target[f] == g:
            return True
    return False


def form_edges(const int64_t[::1] indptr, const int32_t[::1] indices,
               const int64_t[::1] slot_gid, const double[::1] x, const double[::1] y,
               const int64_t[:, ::1] ghost_gid, const double[:, ::1] ghost_x,
               const double[:, ::1] ghost_y, int64_t[::1] target, int32_t[::1] hint,
               double[::1] eta, double eta_min, double eta0, double p_long,
               int64_t n_total, uint64_t seed, uint64_t tick, int64_t[::1] counts):
    """Replace every edge weaker than ``eta_min`` by a new one. Local.

    ``target`` holds the global id of every edge's target (CSR order) and is
    changed in place; ``indices`` the edges' local slots before any change.
    ``slot_gid``, ``x`` and ``y`` give the id and position of every owned and
    ghost slot. A ghost g's own row comes from its owner:
    ``ghost_gid[c, g]`` is its c-th neighbour (-1 for none) and
    ``ghost_x``/``ghost_y`` that neighbour's position; an owned agent's row
    is read from ``indptr``/``indices`` (so every friend's row is the one
    before this call's changes).

    For row i, the friend f is its strongest edge not below ``eta_min``
    (the first of equals). Each weak edge, in row order, with draws keyed
    by (seed, gid_i, tick, STREAM_FORM, 4 * slot + d), slot its place in
    the row:

    * with probability ``p_long`` (draw 0), or when no edge of the row is
      strong enough to lead to friends, a long-range edge to a uniformly
      random agent (draws 1-3: the first that is neither i nor already a
      neighbour of i);
    * otherwise a friend of a friend: among the neighbours of f, the one
      nearest to i in the economic space (then the smaller id) that is
      neither i nor already a neighbour (triadic closure, spatially local).

    The new edge starts at strength ``eta0``, and its ``hint`` (the halo
    rebuild's: a local slot, -2 for another rank's agent, -1 unknown) says
    what this rank knows of the new target: a friend of an owned friend is
    one of that friend's slots (an owned slot, or a ghost: -2); other new
    targets are unknown (-1). An edge that finds no new target keeps its
    target, strength and hint (and is tried again next time).
    counts[0] += long-range edges formed, counts[1] += friend-of-friend
    edges formed, counts[2] += weak edges kept.
    """
    cdef Py_ssize_t i, e, f, best, c, j, sl, r0, r1, n = indptr.shape[0] - 1
    cdef Py_ssize_t k = ghost_gid.shape[0], c0, c1
    cdef int attempt
    cdef int64_t g, cand, me, cand_slot
    cdef double dx, dy, d2, best_d2
    cdef uint64_t draw
    with nogil:
        for i in range(n):
            r0 = indptr[i]
            r1 = indptr[i + 1]
            best = -1
            for f in range(r0, r1):
                if eta[f] >= eta_min and (best < 0 or eta[f] > eta[best]):
                    best = f
            me = slot_gid[i]
            for e in range(r0, r1):
                if eta[e] >= eta_min:
                    continue
                draw = <uint64_t>(4 * (e - r0))
                cand = -1
                cand_slot = -1
                if best < 0 or philox_uniform(seed, <uint64_t>me, tick, _STREAM_FORM,
                                              draw) < p_long:
                    for attempt in range(1, 4):
                        g = <int64_t>(philox_uniform(seed, <uint64_t>me, tick, _STREAM_FORM,
                                                     draw + attempt) * <double>n_total)
                        if g >= n_total:
                            g = n_total - 1
                        if g != me and not _in_row(target, r0, r1, g):
                            cand = g
                            counts[0] += 1
                            break
                else:
                    j = indices[best]
                    if j < n:
                        c0, c1 = indptr[j], indptr[j + 1]
                    else:
                        c0, c1 = 0, k
                    best_d2 = 0.0
                    for c in range(c0, c1):
                        if j < n:
                            sl = indices[c]
                            g = slot_gid[sl]
                            dx = x[sl] - x[i]
                            dy = y[sl] - y[i]
                        else:
                            g = ghost_gid[c, j - n]
                            dx = ghost_x[c, j - n] - x[i]
                            dy = ghost_y[c, j - n] - y[i]
                        if g < 0 or g == me or _in_row(target, r0, r1, g):
                            continue
                        d2 = dx * dx + dy * dy
                        if cand < 0 or d2 < best_d2 or (d2 == best_d2 and g < cand):
                            cand = g
                            best_d2 = d2
                            cand_slot = sl if j < n else -1
                    if cand >= 0:
                        counts[1] += 1
                if cand < 0:
                    counts[2] += 1
                else:
                    target[e] = cand
                    eta[e] = eta0
                    hint[e] = <int32_t>(-1 if cand_slot < 0 else
                                        (cand_slot if cand_slot < n else -2))


def row_tables(const int32_t[::1] indices, const int64_t[::1] rows,
               const int64_t[::1] slot_gid, const double[::1] x, const double[::1] y,
               int64_t[:, ::1] out_gid, double[:, ::1] out_x, double[:, ::1] out_y):
    """The rows ``rows`` of a CSR with k = out_gid.shape[0] edges in every row, as
    tables: for the r-th row i and its c-th edge to slot j = indices[i * k + c],
    out_gid[c, r] = slot_gid[j], out_x[c, r] = x[j] and out_y[c, r] = y[j]. Local.
    (What an owner sends of its agents' rows, one place in the row at a time: one
    pass over the rows instead of 3 k gathers each missing the caches.)"""
    cdef Py_ssize_t r, c, i, j, ahead, n = rows.shape[0], k = out_gid.shape[0]
    with nogil:
        for r in range(n):
            if r + 8 < n:
                ahead = rows[r + 8] * k
                prefetch_read(&indices[ahead], 0, 3)
            i = rows[r] * k
            for c in range(k):
                j = indices[i + c]
                out_gid[c, r] = slot_gid[j]
                out_x[c, r] = x[j]
                out_y[c, r] = y[j]


def gather_ids(const int32_t[::1] indices, const int64_t[::1] slot_gid, int64_t[::1] out):
    """out[e] = slot_gid[indices[e]] for every edge: the targets' global ids. Local.
    (Without the int64 copy of the indices that numpy's indexing makes.)"""
    cdef Py_ssize_t e, m = indices.shape[0]
    with nogil:
        for e in range(m):
            out[e] = slot_gid[indices[e]]
