"""Numpy twin of ``cython_kernels/formation.pyx`` (same arguments, same results).

``edge_strengths`` is vectorised in the kernel's order of operations.
``form_edges`` loops over the rows that have a weak edge (each decision
depends on the ones before it in the row), which is slow but only the
reference.
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


def _uniform(seed, me, tick, draw):
    out = np.empty(1)
    rng.uniform(seed, np.array([me], dtype=np.int64), tick, STREAM_FORM, draw, out)
    return float(out[0])


def form_edges(indptr, indices, slot_gid, x, y, ghost_gid, ghost_x, ghost_y, target, eta,
               eta_min, eta0, p_long, n_total, seed, tick, counts):
    """Numpy twin of ``formation.form_edges``."""
    n = indptr.shape[0] - 1
    weak = eta < eta_min
    rows = np.flatnonzero(np.add.reduceat(np.append(weak, False).astype(np.int64),
                                          indptr[:-1]) * (indptr[1:] > indptr[:-1])) \
        if n else np.empty(0, dtype=np.int64)
    for i in rows:
        r0, r1 = int(indptr[i]), int(indptr[i + 1])
        strong = np.flatnonzero(eta[r0:r1] >= eta_min)
        best = r0 + strong[np.argmax(eta[r0:r1][strong])] if strong.size else -1
        me = int(slot_gid[i])
        for e in range(r0, r1):
            if eta[e] >= eta_min:
                continue
            draw = DRAWS_PER_SLOT * (e - r0)
            cand = -1
            if best < 0 or _uniform(seed, me, tick, draw) < p_long:
                for attempt in range(1, 4):
                    g = min(int(_uniform(seed, me, tick, draw + attempt) * float(n_total)),
                            n_total - 1)
                    if g != me and g not in target[r0:r1]:
                        cand = g
                        counts[0] += 1
                        break
            else:
                j = int(indices[best])
                if j < n:
                    sl = indices[indptr[j]:indptr[j + 1]]
                    g, fx, fy = slot_gid[sl], x[sl], y[sl]
                else:
                    g, fx, fy = ghost_gid[:, j - n], ghost_x[:, j - n], ghost_y[:, j - n]
                ok = (g >= 0) & (g != me) & ~np.isin(g, target[r0:r1])
                if ok.any():
                    dx = fx[ok] - x[i]
                    dy = fy[ok] - y[i]
                    d2 = dx * dx + dy * dy
                    # Nearest, then the smaller id.
                    pick = np.lexsort((g[ok], d2))[0]
                    cand = int(g[ok][pick])
                    counts[1] += 1
            if cand < 0:
                counts[2] += 1
            else:
                target[e] = cand
                eta[e] = eta0
