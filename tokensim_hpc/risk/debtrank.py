"""DebtRank (Battiston, Puliga, Kaushik, Tasca and Caldarelli 2012, "DebtRank: too
central to fail? Financial networks, the FED and systemic risk", Sci. Rep. 2, 541).

Definitions (the paper's, in its notation)
-------------------------------------------
- A_ij: what i owes j (the amount j has invested in funding i). An engine edge
  i -> j carries A_ij as its ``liability`` value; j is i's creditor, exposed to
  i: if i defaults, j loses up to A_ij.
- E_j: j's capital (equity), > 0.
- Impact of i on j: W_ij = min(1, A_ij / E_j), the fraction of j's capital that
  i's default destroys (capped at all of it).
- Economic value: v_i >= 0, relative (normalised here so that sum_i v_i = 1,
  by an exact global sum).
- Each agent has a distress h_i in [0, 1] and a state: undistressed (U),
  distressed (D) or inactive (I). At t = 1 the shocked set S_f has
  h_i(1) = psi and state D; every other agent h_i(1) = 0 and state U. Then
      h_i(t) = min(1, h_i(t-1) + sum_{j : s_j(t-1) = D} W_ji h_j(t-1))
      s_i(t) = I if s_i(t-1) = D;  D if s_i(t-1) = U and h_i(t) > 0;
               s_i(t-1) otherwise,
  so every agent passes its distress on exactly once, the step after it
  became distressed. The process stops at the first T with no agent in D.
- DebtRank of S_f: R = sum_j h_j(T) v_j - sum_j h_j(1) v_j, the fraction of
  the economy's value lost through the network, the initial shock excluded.
  ``total_loss`` = sum_j h_j(T) v_j includes it.

Distributed
-----------
The impact matrix is stored as the engine stores the edges: row i (owned by
the rank that owns agent i) holds W_ij for i's creditors j, so
``sum_j W_ji x_j`` is a transposed product, one per step. W needs E at the
creditors: one halo exchange. Global sums of h v are exact (bit-identical
given h). The states, and with them the number of steps, depend only on
which h are > 0 (a sum of non-negative terms is > 0 exactly when one term
is), so they are the same on any rank count with either solver:

- ``solver="petsc"`` (default): one PETSc MatMultTranspose over the MPIAIJ
  matrix per step. PETSc adds each agent's incoming terms in an order that
  depends on the partition (it sums the diagonal and off-diagonal blocks
  apart), so h, and R, agree between rank counts to rounding, not bit for
  bit.
- ``solver="exact"``: :class:`~tokensim_hpc.risk.transpose.ExactTranspose`,
  which adds each agent's incoming terms in the order (source id, place in
  the source's row) whatever the partition (one all-to-all of the terms of
  edges to other ranks' agents per step; only edges with W_ij > 0 take
  part). h, R and every other figure are bit-identical on any rank count.
  This path uses no PETSc: petsc4py is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RiskInputError
from ..linalg import ExposureMatrix, MatrixOwner
from ..parallel.mpi import allreduce_any
from ..parallel.reduce import allreduce_exact_sums, allreduce_sum_int
from ._inputs import agent_column, edge_column, shocked_slots
from .transpose import ExactTranspose, check_solver

UNDISTRESSED, DISTRESSED, INACTIVE = 0, 1, 2


@dataclass
class DebtRankResult:
    """What one DebtRank run gives (the same on every rank, except ``h`` and ``state``)."""

    debtrank: float      # R = sum h(T) v - sum h(1) v
    total_loss: float    # sum h(T) v, the initial shock included
    initial_loss: float  # sum h(1) v
    steps: int           # propagation steps (transposed products), T - 1
    n_distressed: int    # agents with h(T) > 0, the shocked ones included
    n_defaulted: int     # agents with h(T) = 1
    h: np.ndarray        # h(T) of the owned agents
    state: np.ndarray    # s(T) of the owned agents (0 U, 1 D, 2 I)


class DebtRank(MatrixOwner):
    """DebtRank on the domain's edges, for one or many shocks. Collective.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    liability : float64 array, one per local edge (CSR order)
        A_ij of edge i -> j: what i owes j, >= 0.
    equity : float64 array (n_owned)
        E_i, > 0.
    value : float64 array (n_owned)
        Economic value v_i >= 0 (any scale; normalised to sum 1).
    options : list of str, optional
        PETSc options (``tokensim_`` prefix), if PETSc is not initialised yet
        (ignored with ``solver="exact"``).
    solver : "petsc" or "exact"
        The transposed products: PETSc's MatMultTranspose (agrees between rank
        counts to rounding) or :class:`~tokensim_hpc.risk.transpose.ExactTranspose`
        (bit-identical on any rank count, no PETSc). See the module's notes.

    like : ExactTranspose, optional
        With ``solver="exact"``: one over the same edges (say, of the
        liabilities) whose set-up the impact matrix reuses when the same edges
        take part (:class:`~tokensim_hpc.risk.transpose.ExactTranspose`).

    Use as a context manager, or call :meth:`close`, so that the PETSc
    matrix is destroyed (with ``solver="exact"`` there is none; both work).
    """

    def __init__(self, domain, liability, equity, value, options=None, solver="petsc",
                 like=None):
        self.domain = domain
        self.matrix = None
        self.solver = check_solver(solver)
        self._set_inputs(liability, equity, value)
        if solver == "exact":
            self.matrix = ExactTranspose(domain, self.impact(), "impact", like=like)
        else:
            self.matrix = ExposureMatrix(domain, self.impact(), options=options)

    def _set_inputs(self, liability, equity, value):
        d = self.domain
        self.liability = edge_column(d, liability, "liability")
        self.equity = agent_column(d, equity, "equity", positive=True)
        value = agent_column(d, value, "value")
        total = float(allreduce_exact_sums(d.comm, value)[0])
        if total <= 0:
            raise RiskInputError("value: the economic values sum to 0; nothing can be lost")
        self.value = value / total

    def impact(self) -> np.ndarray:
        """W_ij = min(1, A_ij / E_j) of every local edge i -> j. Collective (E of the
        creditors held by other ranks comes by one halo exchange)."""
        d = self.domain
        equity = np.empty(d.n_owned + d.halo.n_ghost)
        equity[:d.n_owned] = self.equity
        d.halo.exchange(equity)
        return np.minimum(1.0, self.liability / equity[d.indices])

    def update(self, liability=None, equity=None, value=None) -> None:
        """New balance sheets or edges (the matrix follows a changed edge pattern). Collective."""
        self._set_inputs(self.liability if liability is None else liability,
                         self.equity if equity is None else equity,
                         self.value if value is None else value)
        self.matrix.update(self.impact())

    def run(self, shocked, psi=1.0) -> DebtRankResult:
        """Propagate the distress of the agents ``shocked`` (global ids, the same on every
        rank; psi their initial distress, one value or one per id, in (0, 1]). Collective.

        An id that no agent has is refused with a
        :class:`~tokensim_hpc.errors.RiskInputError` naming it.
        """
        d = self.domain
        slots, which = shocked_slots(d, shocked)
        psi = np.broadcast_to(np.asarray(psi, dtype=np.float64), np.shape(np.atleast_1d(shocked)))
        if np.any(~(psi > 0) | ~(psi <= 1)):
            raise RiskInputError(f"psi (initial distress) must be in (0, 1], got {psi.tolist()}")
        h = np.zeros(d.n_owned)
        state = np.full(d.n_owned, UNDISTRESSED, dtype=np.int8)
        h[slots] = psi[which]
        state[slots] = DISTRESSED
        h1 = h.copy()
        steps = 0
        while allreduce_any(d.comm, np.any(state == DISTRESSED)):
            distressed = state == DISTRESSED
            # Only the agents distressed at t-1 pass on their h(t-1), once.
            incoming = self.matrix.mult_transpose(np.where(distressed, h, 0.0))
            h = np.minimum(1.0, h + incoming)
            state[distressed] = INACTIVE
            state[(state == UNDISTRESSED) & (h > 0)] = DISTRESSED
            steps += 1
        total, initial = allreduce_exact_sums(d.comm, h * self.value, h1 * self.value)
        counts = allreduce_sum_int(d.comm, np.array([np.count_nonzero(h > 0),
                                                     np.count_nonzero(h >= 1.0)]))
        return DebtRankResult(debtrank=float(total - initial), total_loss=float(total),
                              initial_loss=float(initial), steps=steps,
                              n_distressed=int(counts[0]), n_defaulted=int(counts[1]),
                              h=h, state=state)


def debtrank(domain, liability, equity, value, shocked, psi=1.0, options=None,
             solver="petsc") -> DebtRankResult:
    """DebtRank of one shocked set (see :class:`DebtRank`); PETSc objects freed. Collective."""
    with DebtRank(domain, liability, equity, value, options=options, solver=solver) as dr:
        return dr.run(shocked, psi)
