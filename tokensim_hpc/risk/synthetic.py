"""Random balance sheets on the domain's edges, keyed by agent id (for tests and
benchmarks). Local; no MPI.

Every number is a counter-based draw keyed by (seed, agent id, stream, draw):
the liability of the c-th edge of agent i's row is draw c of agent i, and an
agent's equity and external assets are draws past any edge's. A network that
is the same on any rank count (the engine's) therefore gets the same balance
sheets on any rank count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as kernel_loader
from ._inputs import row_sums

STREAM_RISK = 8
_DRAW_EQUITY = 1 << 20
_DRAW_EXTERNAL = _DRAW_EQUITY + 1


@dataclass
class BalanceSheets:
    """Interbank liabilities per edge and per-agent figures (owned agents)."""

    liability: np.ndarray  # L_ij of every local edge i -> j (i owes j)
    equity: np.ndarray     # E_i
    external: np.ndarray   # e_i, external assets
    value: np.ndarray      # v_i, economic value (here i's interbank obligations, pbar_i)


def balance_sheets(domain, seed: int, equity_range=(1.0, 5.0),
                   external_range=(0.5, 2.5), backend: str = "cython") -> BalanceSheets:
    """Liabilities uniform in [0.5, 1.5) per edge, equity and external assets uniform in
    the given ranges, value = pbar_i. Local."""
    uniform = kernel_loader.load(backend).rng.uniform
    indptr, gid = domain.indptr, domain.gid
    degree = np.diff(indptr)
    liability = np.empty(int(indptr[-1]))
    for c in range(int(degree.max(initial=0))):
        rows = np.flatnonzero(degree > c)
        u = np.empty(rows.shape[0])
        uniform(seed, np.ascontiguousarray(gid[rows]), 0, STREAM_RISK, c, u)
        liability[indptr[rows] + c] = 0.5 + u
    u = np.empty(domain.n_owned)
    uniform(seed, gid, 0, STREAM_RISK, _DRAW_EQUITY, u)
    equity = equity_range[0] + (equity_range[1] - equity_range[0]) * u
    uniform(seed, gid, 0, STREAM_RISK, _DRAW_EXTERNAL, u)
    external = external_range[0] + (external_range[1] - external_range[0]) * u
    return BalanceSheets(liability=liability, equity=equity, external=external,
                         value=row_sums(indptr, liability))
