"""Centralities of a weighted directed network, and its most central agents.

The network is the domain's: an edge i -> j (in CSR order, row i owned by
the rank that owns agent i) carries one weight w_ij >= 0, e.g. an exposure
or a tie strength; duplicate edges add up, a self edge counts like any other.

Definitions
-----------
- In-strength: s_j = sum_i w_ij, over the edges that point to j.
- PageRank with damping alpha in [0, 1): the random surfer follows an
  out-edge of i with probability P_ij = w_ij / o_i (o_i = sum_j w_ij, i's
  out-strength) and, with probability 1 - alpha, or always from a dangling
  agent (o_i = 0), jumps to an agent drawn uniformly. The PageRank x is the
  stationary distribution:
      x = alpha P^T x + (alpha sum_{i dangling} x_i + 1 - alpha) / N * 1,
  sum_i x_i = 1. The bracket is one number c, so x = (c / N) y with
  (I - alpha P^T) y = 1 (Langville and Meyer 2006, "Google's PageRank and
  beyond", ch. 7; Del Corso, Gulli and Romani 2005): one linear solve,
  then y / sum(y). ``residual`` reports the maximum over agents of the
  defining equation's residual, the dangling term included.
- Katz: x = (I - a W^T)^-1 b 1 = b sum_{k>=0} a^k (W^T)^k 1, for a > 0 below
  1 / rho(W) (rho the spectral radius), b > 0: agent j collects b from
  every walk that ends at j, a walk of length k weighted by a^k times the
  product of its weights. rho(W) is not computed (that would take an
  eigensolve as costly as the centrality); ``a`` is the caller's. A solve
  that does not converge raises :class:`~tokensim_hpc.errors.SolverError`;
  one that converges is accepted only if it certifies a < 1 / rho(W): the
  solution x > 0 with (I - a W^T) x > 0 (a residual below b / 2). For a
  Z-matrix M = I - B (B = a W^T >= 0), a vector x >= 0 with M x > 0
  exists exactly when rho(B) < 1 (Berman and Plemmons 1994, "Nonnegative
  matrices in the mathematical sciences", ch. 6, condition I27); for
  a >= 1 / rho(W) the linear system may still have a solution, but then
  some entry is negative (or the residual is not small), and the call is
  refused with a :class:`~tokensim_hpc.errors.RiskInputError`.
- ``top_agents``: the k largest scores over all ranks, ties to the smaller
  agent id.

Distributed
-----------
In-strength is computed bit-identically on any rank count, as W^T 1 by
:class:`~tokensim_hpc.risk.transpose.ExactTranspose`: each agent's in-edge
weights are brought to its owner (edges to ghosts routed by
:meth:`~tokensim_hpc.parallel.halo.HaloPlan.route_to_owners`, one all-to-all)
and added in one order that does not depend on the partition, that of
(source agent id, place of the edge in the source's row), one after the
other, over the same sequence of values on every rank count; edges of
weight 0 are kept as terms (``skip_zeros=False``). (A PETSc
MatMultTranspose of ones would be one line, but PETSc sums the diagonal and
off-diagonal blocks of a row apart, so the last bits would depend on the
partition.) Out-strengths are row sums of owned rows, also bit-identical.

PageRank and Katz are PETSc KSP solves (GMRES with Jacobi preconditioning by
default, ``-tokensim_ksp_*`` options) of A^T x = b with A = I - alpha P or
I - a W, an :class:`~tokensim_hpc.linalg.ExposureMatrix` with an explicit
unit diagonal and the engine's row ownership. Their scores agree between
rank counts to the solver's tolerance, not bit for bit; PageRank's
normalising sum is exact (bit-identical given y).

``top_agents`` takes each rank's k best (ties included at the cut, then
ordered by score and id) and allgathers them: k values per rank travel,
never all N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RiskInputError, SolverError
from ..linalg import ExposureMatrix, MatrixOwner, TransposeSolver
from ..parallel.exchange import allgatherv
from ..parallel.mpi import allreduce_any, allreduce_min_max
from ..parallel.reduce import allreduce_exact_sums
from ._inputs import edge_column, row_sums
from .transpose import ExactTranspose


@dataclass
class CentralityResult:
    """Scores of the owned agents and how the solve went (the same on every rank)."""

    score: np.ndarray  # of the owned agents
    iterations: int    # Krylov iterations
    residual: float    # max over agents of |residual of the defining equation|
    solver: str        # KSP/PC types, e.g. gmres/jacobi


class Centrality(MatrixOwner):
    """Centralities of the domain's edges weighted by ``weight``. Collective.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    weight : float64 array, one per local edge (CSR order), optional
        w_ij >= 0 of edge i -> j; by default the domain's own edge weights.
    options : list of str, optional
        PETSc options (``tokensim_`` prefix), if PETSc is not initialised yet.

    The PETSc matrix is built by the first solve and reused by the next ones
    (values rewritten in place; rebuilt if the domain's edges changed). Use as
    a context manager, or call :meth:`close`, to destroy it.
    """

    def __init__(self, domain, weight=None, options=None):
        self.domain = domain
        self.matrix = None
        self._options = options
        self.update(weight)

    def update(self, weight=None) -> None:
        """New edge weights (or the domain's, after its edges changed). Collective."""
        d = self.domain
        self.weight = edge_column(d, d.edge_weights() if weight is None else weight, "weight")
        self.out_strength = row_sums(d.indptr, self.weight)

    # -- in-strength

    def in_strength(self) -> np.ndarray:
        """s_j = sum_i w_ij of the owned agents, bit-identical on any rank count.
        Collective (one all-to-all of the edges that point to other ranks' agents)."""
        product = ExactTranspose(self.domain, self.weight, "weight", skip_zeros=False)
        return product.mult_transpose(np.ones(self.domain.n_owned))

    # -- PageRank and Katz

    def _solve(self, off_diagonal, rhs, tol):
        """x with (I - M)^T x = rhs, M the edges' ``off_diagonal`` values. Collective."""
        if self.matrix is None:
            self.matrix = ExposureMatrix(self.domain, -off_diagonal, diagonal=1.0,
                                         options=self._options)
        else:
            self.matrix.update(-off_diagonal, diagonal=1.0)
        solver = TransposeSolver(self.domain.comm, rtol=tol)
        try:
            x = solver.solve(self.matrix.mat, rhs, rhs)
            return x, solver.last_iterations, solver.describe()
        finally:
            solver.destroy()

    def pagerank(self, alpha: float = 0.85, tol: float = 1e-12) -> CentralityResult:
        """PageRank with damping ``alpha`` in [0, 1), sum 1 over all agents. Collective.

        ``tol``: the Krylov solve's relative tolerance (unless
        ``-tokensim_ksp_rtol`` says otherwise).
        """
        if not (0.0 <= alpha < 1.0):
            raise RiskInputError(f"PageRank: the damping alpha must be in [0, 1), got {alpha!r}")
        d = self.domain
        per_edge = np.repeat(self.out_strength, np.diff(d.indptr))
        p = np.divide(self.weight, per_edge, out=np.zeros_like(per_edge), where=per_edge > 0)
        del per_edge
        y, iterations, solver = self._solve(alpha * p, np.ones(d.n_owned), tol)
        del p
        total = float(allreduce_exact_sums(d.comm, y)[0])
        x = y / total
        dangling = self.out_strength == 0
        mass = float(allreduce_exact_sums(d.comm, x[dangling])[0])
        # (I - alpha P^T) x = (alpha * dangling mass + 1 - alpha) / N.
        r = self.matrix.mult_transpose(x) - (alpha * mass + 1.0 - alpha) / d.n_total
        residual = allreduce_min_max(d.comm, 0.0, float(np.abs(r).max(initial=0.0)))[1]
        return CentralityResult(score=x, iterations=iterations, residual=residual,
                                solver=solver)

    def katz(self, a: float, b: float = 1.0, tol: float = 1e-12) -> CentralityResult:
        """Katz centrality x = (I - a W^T)^-1 b 1 (a > 0 below 1 / rho(W), b > 0).
        Collective.

        Raises :class:`~tokensim_hpc.errors.SolverError` if the Krylov solve does
        not converge and :class:`~tokensim_hpc.errors.RiskInputError` if its
        solution shows that a >= 1 / rho(W) (see the module's notes).
        """
        if not (np.isfinite(a) and a > 0):
            raise RiskInputError(f"Katz: the attenuation a must be finite and > 0, got {a!r}")
        if not (np.isfinite(b) and b > 0):
            raise RiskInputError(f"Katz: b must be finite and > 0, got {b!r}")
        d = self.domain
        rhs = np.full(d.n_owned, float(b))
        try:
            x, iterations, solver = self._solve(a * self.weight, rhs, tol)
        except SolverError as exc:
            raise SolverError(f"Katz with a = {a!r}: {exc}. The series sum_k a^k (W^T)^k "
                              f"converges only for a < 1 / rho(W); a may be at or above that "
                              f"bound, or so close to it that the system is ill-conditioned. "
                              f"Try a smaller a.", reason=exc.reason,
                              iterations=exc.iterations) from exc
        r = self.matrix.mult_transpose(x) - b
        lowest, residual = allreduce_min_max(d.comm, float(x.min(initial=np.inf)),
                                             float(np.abs(r).max(initial=0.0)))
        if not (lowest > 0 and residual < 0.5 * b):
            raise RiskInputError(f"Katz: a = {a!r} is not below 1 / rho(W), the inverse of the "
                                 f"spectral radius of the weights: the solution of "
                                 f"(I - a W^T) x = b 1 has min x = {lowest:.6g} and residual "
                                 f"{residual:.3g}, where a convergent series gives x >= b > 0. "
                                 f"Choose a smaller a (any a < 1 / max_i sum_j w_ij is safe).")
        return CentralityResult(score=x, iterations=iterations, residual=residual,
                                solver=solver)

    # -- lifetime


def in_strength(domain, weight=None) -> np.ndarray:
    """In-strength of the owned agents (see :class:`Centrality`). Collective."""
    return Centrality(domain, weight).in_strength()


def pagerank(domain, weight=None, alpha: float = 0.85, tol: float = 1e-12,
             options=None) -> CentralityResult:
    """PageRank (see :class:`Centrality`); PETSc objects freed. Collective."""
    with Centrality(domain, weight, options=options) as c:
        return c.pagerank(alpha, tol)


def katz(domain, a: float, weight=None, b: float = 1.0, tol: float = 1e-12,
         options=None) -> CentralityResult:
    """Katz centrality (see :class:`Centrality`); PETSc objects freed. Collective."""
    with Centrality(domain, weight, options=options) as c:
        return c.katz(a, b, tol)


def top_agents(domain, score, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of the k agents with the largest scores over all ranks, largest
    first, ties to the smaller agent id; the same arrays on every rank. Collective.

    ``score`` holds one finite value per owned agent. Each rank offers its own
    best k (all agents tied at its cut considered), and the at most
    k * ranks candidates are allgathered; fewer than k come back when the
    network has fewer agents.
    """
    d = domain
    score = np.ascontiguousarray(score, dtype=np.float64)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise RiskInputError(f"top_agents: k must be a positive integer, got {k!r}")
    k = int(k)
    if allreduce_any(d.comm, score.shape != (d.n_owned,)):
        raise RiskInputError("top_agents: one score per owned agent is needed on every rank")
    bad = ~np.isfinite(score)
    first = allreduce_min_max(d.comm, float(d.gid[bad].min(initial=d.n_total)), 0.0)[0]
    if first < d.n_total:
        raise RiskInputError(f"top_agents: scores must be finite; agent {int(first)} has "
                             f"a NaN or infinite score")
    candidates = np.arange(d.n_owned)
    if d.n_owned > k:
        cut = np.partition(score, d.n_owned - k)[d.n_owned - k]
        candidates = np.flatnonzero(score >= cut)
    best = candidates[np.lexsort((d.gid[candidates], -score[candidates]))][:k]
    ids = allgatherv(d.comm, d.gid[best].astype(np.int64))
    values = allgatherv(d.comm, score[best])
    order = np.lexsort((ids, -values))[:k]
    return ids[order], values[order]
