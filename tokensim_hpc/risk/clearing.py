"""Eisenberg-Noe clearing payments (Eisenberg and Noe 2001, "Systemic risk in
financial systems", Management Science 47(2), 236-249).

Definitions
-----------
- L_ij >= 0: what i owes j. An engine edge i -> j carries L_ij as its
  ``liability`` value (duplicate edges add up).
- pbar_i = sum_j L_ij: i's total obligation.
- Pi_ij = L_ij / pbar_i: relative liabilities (row i is 0 when pbar_i = 0).
- e_i >= 0: i's external (outside the network) assets, net.
- A clearing vector is a fixed point of p = min(pbar, Pi^T p + e): everyone
  pays what it owes or, if it cannot, all it has (limited liability, absolute
  priority, pro rata sharing). Agent i defaults when p_i < pbar_i; the
  shortfall is sum_i (pbar_i - p_i).

Two methods, both from p = pbar, both giving the greatest clearing vector:

``fda``, the fictitious default algorithm of the paper: the set D of
agents that cannot pay even if everyone else pays as computed grows round by
round; each round solves the linear system of "D pays all it has, the others
pay in full", (I - S Pi^T) p = S e + (I - S) pbar with S = diag(1_D), by a
PETSc KSP (a transposed solve with I - Pi S, whose matrix is the relative
liabilities with the engine's row ownership). It ends, exactly up to the
solver's tolerance, when a round adds no agent to D: at most as many rounds
as the default cascade has waves.

``fixed_point``: p <- min(pbar, Pi^T p + e) until the largest change is at
most ``tol * max(pbar)``; the error left is about tol / (1 - rho) times
max(pbar), rho the spectral radius of Pi on the defaulting set.

Two solvers for the products Pi^T p (``solver=``):

- ``"petsc"`` (default): one PETSc MatMultTranspose over the MPIAIJ matrix
  of -Pi (with an explicit zero diagonal, for the systems of ``fda``). Both
  methods work; the default method is ``fda``.
- ``"exact"``: :class:`~tokensim_hpc.risk.transpose.ExactTranspose` of Pi
  (only edges with L_ij > 0 take part), which adds each agent's incoming
  payments in the order (source id, place in the source's row) whatever
  the partition. Only ``fixed_point`` is possible (``fda`` needs Krylov
  solves, whose sums depend on the partition): the default method is then
  ``fixed_point``, and asking for ``fda`` is refused with a
  :class:`~tokensim_hpc.errors.RiskInputError`. This path uses no PETSc:
  petsc4py is never imported.

Distributed: pbar is the sum of each agent's own row (local, the same on any
rank count). With ``solver="petsc"`` Pi^T p is a PETSc MatMultTranspose,
whose sums depend on the partition in their last bits, so results agree
between rank counts within the solver's tolerance (and ``shortfall``, an
exact sum of them, likewise). With ``solver="exact"`` every product, hence
every iterate, the stop rule (a maximum, exact), the number of iterations
and the result (payments, defaults, the exact sums ``shortfall`` and
``total_obligations``, ``residual``) are bit-identical on any rank count.
``residual`` reports max_i |p_i - min(pbar_i, (Pi^T p + e)_i)| of the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RiskInputError
from ..linalg import ExposureMatrix, MatrixOwner, TransposeSolver
from ..parallel.mpi import allreduce_min_max
from ..parallel.reduce import allreduce_exact_sums, allreduce_sum_int
from ._inputs import agent_column, edge_column, row_sums
from .transpose import ExactTranspose, check_solver

METHODS = ("fda", "fixed_point")
# The methods each solver can run; the first is the default.
SOLVER_METHODS = {"petsc": ("fda", "fixed_point"), "exact": ("fixed_point",)}


@dataclass
class ClearingResult:
    """A clearing vector (owned entries) and its global figures (the same on every rank)."""

    payments: np.ndarray      # p of the owned agents
    obligations: np.ndarray   # pbar of the owned agents
    defaulted: np.ndarray     # p < pbar, owned agents
    n_defaulted: int
    shortfall: float          # sum (pbar - p), exact sum
    total_obligations: float  # sum pbar, exact sum
    method: str
    iterations: int           # fda: rounds that added defaults; fixed_point: updates of p
    solver_iterations: int    # fda: Krylov iterations of all rounds; fixed_point: 0
    residual: float           # max |p - min(pbar, Pi^T p + e)|


class Clearing(MatrixOwner):
    """Eisenberg-Noe clearing on the domain's edges, for one or many external-asset
    vectors. Collective.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    liability : float64 array, one per local edge (CSR order)
        L_ij of edge i -> j: what i owes j, >= 0.
    options : list of str, optional
        PETSc options (``tokensim_`` prefix: ``-tokensim_ksp_type``,
        ``-tokensim_pc_type``, ``-tokensim_ksp_rtol`` ...), if PETSc is not
        initialised yet (ignored with ``solver="exact"``).
    solver : "petsc" or "exact"
        The products Pi^T p: PETSc (``fda`` and ``fixed_point``, default
        ``fda``) or :class:`~tokensim_hpc.risk.transpose.ExactTranspose`
        (``fixed_point`` only, its default; bit-identical on any rank count,
        no PETSc). See the module's notes.

    like : ExactTranspose, optional
        With ``solver="exact"``: one over the same edges (say, of the
        liabilities) whose set-up the relative liabilities' matrix reuses when
        the same edges take part (:class:`~tokensim_hpc.risk.transpose.ExactTranspose`).

    Use as a context manager, or call :meth:`close`, to destroy the PETSc objects.
    """

    def __init__(self, domain, liability, options=None, solver="petsc", like=None):
        self.domain = domain
        self.matrix = None
        self._system = None
        self.solver_type = None
        self.solver = check_solver(solver)
        self._set_liability(liability)
        if solver == "exact":
            self.matrix = ExactTranspose(domain, self._relative, "relative liability",
                                         like=like)
        else:
            # The matrix holds -Pi, with an explicit zero diagonal so that I - Pi S is
            # formed in place (Pi S by a column scaling, I by a shift of stored entries).
            self.matrix = ExposureMatrix(domain, -self._relative, diagonal=0.0,
                                         options=options)

    def _set_liability(self, liability):
        d = self.domain
        self.liability = edge_column(d, liability, "liability")
        self.pbar = row_sums(d.indptr, self.liability)
        per_edge = np.repeat(self.pbar, np.diff(d.indptr))
        self._relative = np.divide(self.liability, per_edge, out=np.zeros_like(per_edge),
                                   where=per_edge > 0)

    def update(self, liability) -> None:
        """New liabilities, or new edges (the matrix follows the pattern). Collective."""
        self._set_liability(liability)
        if self.solver == "exact":
            self.matrix.update(self._relative)
        elif self.matrix.update(-self._relative, diagonal=0.0):
            self._system = None  # destroyed with the old matrix

    def inflow(self, p: np.ndarray) -> np.ndarray:
        """(Pi^T p)_i: what agent i receives when everyone pays p. Collective."""
        if self.solver == "exact":
            return self.matrix.mult_transpose(p)
        return -self.matrix.mult_transpose(p)

    def solve(self, external, method: str | None = None, tol: float = 1e-12,
              max_iter: int = 100_000) -> ClearingResult:
        """The greatest clearing vector for external assets ``external`` (n_owned, >= 0).
        Collective.

        ``method``: ``fda`` or ``fixed_point``; by default ``fda`` with the PETSc
        solver and ``fixed_point`` with the exact one (which cannot run ``fda``).
        ``tol``: for ``fda`` the Krylov solves' relative tolerance (unless
        ``-tokensim_ksp_rtol`` says otherwise); for ``fixed_point`` the stop rule
        max |change| <= tol * max(pbar). ``max_iter`` bounds the fixed-point updates.
        """
        allowed = SOLVER_METHODS[self.solver]
        if method is None:
            method = allowed[0]
        if method not in METHODS:
            raise RiskInputError(f"clearing method must be one of {METHODS}, got {method!r}")
        if method not in allowed:
            raise RiskInputError(f"clearing method {method!r} is not possible with "
                                 f"solver={self.solver!r}, which allows {allowed} (fda "
                                 f"solves linear systems with PETSc: use solver='petsc')")
        e = agent_column(self.domain, external, "external assets")
        if method == "fda":
            p, iterations, solver_iterations = self._fda(e, tol)
        else:
            p, iterations = self._fixed_point(e, tol, max_iter)
            solver_iterations = 0
        return self._result(p, e, method, iterations, solver_iterations)

    def _fda(self, e, tol):
        d = self.domain
        pbar = self.pbar
        p = pbar.copy()
        in_default = np.zeros(d.n_owned, dtype=bool)
        rounds = 0
        solver = TransposeSolver(d.comm, rtol=tol)
        try:
            while True:
                new = ~in_default & (self.inflow(p) + e < pbar)
                if allreduce_sum_int(d.comm, np.array([np.count_nonzero(new)]))[0] == 0:
                    break
                in_default |= new
                rounds += 1
                s = in_default.astype(np.float64)
                # (I - Pi S)^T p = S e + (I - S) pbar: the defaulting pay what they have.
                self._system = self.matrix.identity_plus_scaled(s, out=self._system)
                p = solver.solve(self._system, np.where(in_default, e, pbar), p)
                p = np.where(in_default, np.clip(p, 0.0, pbar), pbar)
            self.solver_type = solver.describe()
            return p, rounds, solver.iterations
        finally:
            solver.destroy()

    def _fixed_point(self, e, tol, max_iter):
        comm = self.domain.comm
        pbar = self.pbar
        scale = allreduce_min_max(comm, 0.0, float(pbar.max(initial=0.0)))[1]
        p = pbar.copy()
        for it in range(1, max_iter + 1):
            p_new = np.minimum(pbar, self.inflow(p) + e)
            change = allreduce_min_max(comm, 0.0, float(np.abs(p_new - p).max(initial=0.0)))[1]
            p = p_new
            if change <= tol * scale:
                return p, it
        raise RuntimeError(f"the clearing fixed point did not converge in {max_iter} "
                           f"iterations (last change {change:.3g})")

    def _result(self, p, e, method, iterations, solver_iterations) -> ClearingResult:
        comm = self.domain.comm
        pbar = self.pbar
        target = np.minimum(pbar, self.inflow(p) + e)
        residual = allreduce_min_max(comm, 0.0, float(np.abs(p - target).max(initial=0.0)))[1]
        defaulted = p < pbar
        shortfall, total = allreduce_exact_sums(comm, pbar - p, pbar)
        n_defaulted = int(allreduce_sum_int(comm, np.array([np.count_nonzero(defaulted)]))[0])
        return ClearingResult(payments=p, obligations=pbar.copy(), defaulted=defaulted,
                              n_defaulted=n_defaulted, shortfall=float(shortfall),
                              total_obligations=float(total), method=method,
                              iterations=iterations, solver_iterations=solver_iterations,
                              residual=residual)

    def close(self) -> None:
        """Destroy the PETSc matrices (the system matrix with the other). Collective."""
        super().close()
        self._system = None


def clearing_vector(domain, liability, external, method: str | None = None,
                    tol: float = 1e-12, options=None, solver="petsc") -> ClearingResult:
    """Eisenberg-Noe clearing vector (see :class:`Clearing`; ``method`` by default
    ``fda`` with ``solver="petsc"``, ``fixed_point`` with ``"exact"``); PETSc objects
    freed. Collective."""
    with Clearing(domain, liability, options=options, solver=solver) as clearing:
        return clearing.solve(external, method=method, tol=tol)
