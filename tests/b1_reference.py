"""A small serial numpy implementation of B1, written from shared/benchmark-B1.md.

Independent of the engine: scipy's cKDTree for the network, plain numpy for
the tick. Used by the tests to check the engine with sigma = 0.
"""

import numpy as np
from scipy.spatial import cKDTree


def b1_reference(n, ticks, seed, k=8, s0_offset=None, fee=0.003):
    xy = np.random.default_rng(seed).random((n, 2))
    _, nbr = cKDTree(xy).query(xy, k=k + 1)
    nbr = nbr[:, 1:]
    w = 1.0 / k
    s = np.zeros(n) if s0_offset is None else xy[:, 0] - s0_offset
    c = np.full(n, 1000.0)
    h = np.full(n, 10.0)
    rc = rt = 100.0 * n
    p = p_prev = rc / rt
    g = 1.0 - fee
    out = {"price": [], "net_flow": [], "mean_sentiment": [], "total_wealth": []}
    for _ in range(ticks):
        ni = (w * s[nbr]).sum(axis=1)
        m = float(np.clip(100.0 * np.log(p / p_prev), -1.0, 1.0))
        s = np.tanh(0.5 * s + 1.0 * ni + 0.5 * m)
        q = np.where(s > 0, 0.01 * s * c, 0.01 * s * h * p)
        big_q = q.sum()
        if big_q > 0:
            dt = rt * big_q * g / (rc + big_q * g)
            rc += big_q
            rt -= dt
        elif big_q < 0:
            a = -big_q / p
            dc = rc * a * g / (rt + a * g)
            rt += a
            rc -= dc
        p_prev, p = p, rc / rt
        c = np.maximum(c - q, 0.0)
        h = np.maximum(h + q / p, 0.0)
        out["price"].append(p)
        out["net_flow"].append(big_q)
        out["mean_sentiment"].append(s.mean())
        out["total_wealth"].append((c + h * p).sum())
    return {name: np.array(v) for name, v in out.items()}, nbr
