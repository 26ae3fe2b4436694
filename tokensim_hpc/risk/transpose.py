"""Transposed products over the domain's edges, bit-identical on any rank count.

For one weight w_e >= 0 per edge e = i -> j (CSR order, row i owned by the
rank that owns agent i), :class:`ExactTranspose` computes

    y_j = sum over the edges e = i -> j of w_e x_i

for the owned agents j, which is W^T x for the N x N matrix W of the
edges (duplicate edges add up, a self edge counts like any other). It is
what a PETSc MatMultTranspose computes, but PETSc sums each row's diagonal
and off-diagonal blocks apart, so its last bits depend on the partition.
Here the terms of each j are added in one order that does not depend on it,
that of (source agent id, place of the edge in the source's row), one
after the other from the first (the Cython kernel ``risk.transpose_sums``,
one pass over the terms, with its numpy twin) over the same sequence of
values on every rank count. The products w_e x_i are formed by the rank
that owns i, the same multiplications everywhere; so y is bit-identical on
1, 2, 3 or 4 ranks (or any other number).

Work is done once per weight pattern. At construction (and on :meth:`update`
when an edge's target or the set of edges that take part changed) the edges
that point to other ranks' agents are routed to their owners
(:meth:`~tokensim_hpc.parallel.halo.HaloPlan.route_to_owners`, which sends
records in an order that depends only on its inputs), their keys (source id,
place in the row) travel once, and the order of every agent's terms is
sorted once. A product then moves only the values w_e x_i of those edges,
one all-to-all, and adds everything up in the stored order.

Only edges with w_e != 0 take part (a sparse weight pattern is cheap) unless
``skip_zeros=False``. For finite x the two agree but for the sign of a zero
sum (a term 0 * x_i added to -0.0 makes +0.0); both are bit-identical across
rank counts.

The class has the shape of :class:`~tokensim_hpc.linalg.ExposureMatrix`'s
product interface (``mult_transpose``, ``update``, ``destroy``, ``n_entries``),
so that the risk measures can hold either in ``MatrixOwner.matrix``; it uses
no PETSc.
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import kernels
from ..errors import RiskInputError
from ..parallel.mpi import allreduce_any, allreduce_max_int
from ._inputs import edge_column

# The transposed products the risk measures can run on: PETSc's MatMultTranspose
# (and KSP solves), or ExactTranspose.
SOLVERS = ("petsc", "exact")


def check_solver(solver) -> str:
    """``solver`` if it is one of :data:`SOLVERS`, else a RiskInputError. Local (every
    rank is given the same value)."""
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise RiskInputError(f"solver must be one of {SOLVERS}, got {solver!r}")
    return solver


class ExactTranspose:
    """y = W^T x over the domain's edges, bit-identical on any rank count. Collective.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    weight : float64 array, one per local edge (CSR order)
        w_e >= 0 of edge e = i -> j (finite; checked with the agent named).
    name : str
        What the weights are called in error messages.
    skip_zeros : bool
        Leave the edges with w_e == 0 out (default; see the module's notes).
    like : ExactTranspose, optional
        One over the same domain (and ``skip_zeros``) whose route and order of
        terms are taken over when its edges that take part are these weights'
        (made again otherwise): several weightings of one exposure network,
        such as the liabilities and the impacts W_ij = min(1, L_ij / E_j), then
        pay for the set-up once. ``like`` itself is not changed.
    """

    # The set-up that depends only on which edges take part (shared by ``like``).
    _SHARED = ("_pattern", "_loc_place", "_loc_edge", "_index", "_rem_edge", "_rem_src",
               "_route", "_rows", "_starts")

    def __init__(self, domain, weight, name: str = "weight", skip_zeros: bool = True,
                 like: ExactTranspose | None = None):
        self.domain = domain
        self.name = name
        self.skip_zeros = skip_zeros
        self._pattern = None
        if like is not None and like.domain is domain and like.skip_zeros == skip_zeros \
                and like._pattern is not None:
            for attr in self._SHARED:
                setattr(self, attr, getattr(like, attr))
            self._coef = like._coef.copy()  # written in place by update
            self._b = np.empty_like(like._b)
        self.update(weight)

    # -- set-up

    def update(self, weight) -> bool:
        """New weights; the route and the order of the terms are made again when the
        domain's edges or the edges that take part changed (on any rank). Collective.

        Returns True when they were made again.
        """
        d = self.domain
        w = edge_column(d, weight, self.name)
        take = (w != 0) if self.skip_zeros else np.ones(w.shape[0], dtype=bool)
        if self._pattern is not None and not self._pattern_changed(take):
            self._coef[self._loc_place] = w[self._loc_edge]
            self._rem_w = w[self._rem_edge]
            return False
        self._build(w, take)
        return True

    def _pattern_changed(self, take) -> bool:
        d = self.domain
        ref_indices, ref_halo, ref_take = self._pattern
        changed = (ref_indices() is not d.indices or ref_halo() is not d.halo
                   or ref_take.shape != take.shape or not np.array_equal(ref_take, take))
        return allreduce_any(d.comm, changed)

    def _build(self, w, take) -> None:
        d = self.domain
        n = d.n_owned
        edge = np.flatnonzero(take)  # the edges that take part, CSR order
        degree = np.diff(d.indptr)
        source = np.repeat(np.arange(n, dtype=np.int64), degree)[edge]
        # The order of an agent's terms: (source id, place in the source's row), one key.
        width = max(1, allreduce_max_int(d.comm, int(degree.max(initial=0))))
        span = (d.n_total + 1) * width  # keys are below span, one per edge
        if span >= 2**62:
            raise OverflowError("ExactTranspose: agent ids times row length exceed int64")
        key = d.gid[source] * width + (edge - d.indptr[source])
        target = d.indices[edge].astype(np.int64)
        ghost = target >= n
        route = d.halo.route_to_owners(target[ghost])
        rem = np.flatnonzero(ghost)[route.order]  # edges to ghosts, in sending order
        (got_key,) = route.send(key[rem], in_route_order=True)
        loc = np.flatnonzero(~ghost)
        n_loc = loc.shape[0]
        all_target = np.concatenate((target[loc], route.owned))
        all_key = np.concatenate((key[loc], got_key))
        del key, got_key
        # By target, then key (keys are unique: one order), with each target's first
        # term and the targets that have terms: a counting sort by target and a sort of
        # each target's few terms by key (a Cython kernel, far cheaper than a sort).
        order, self._rows, self._starts = kernels.compiled().risk.transpose_order(
            n, all_target, all_key)
        del all_key, all_target
        # The sorted sequence of terms is coef[p] * b[index[p]] with b = (x of the owned
        # agents, the terms received): a local term is w_e x_i, a received one, formed
        # by its sender, is itself times 1.0 (exact), so the values are the same.
        is_loc = order < n_loc
        self._loc_place = np.flatnonzero(is_loc)
        loc = loc[order[is_loc]]
        del is_loc
        self._loc_edge = edge[loc]
        index = order
        index[self._loc_place] = source[loc]
        received = np.ones(order.shape[0], dtype=bool)
        received[self._loc_place] = False
        index[received] += n - n_loc  # n + place in the received terms
        del received
        self._index = index
        self._coef = np.ones(index.shape[0])
        self._coef[self._loc_place] = w[self._loc_edge]
        self._rem_edge = edge[rem]
        self._rem_src = source[rem]
        self._rem_w = w[self._rem_edge]
        self._route = route
        # The products' values, owned and received (kept: a new array per product costs
        # page faults).
        self._b = np.empty(n + route.n_recv)
        self._pattern = (weakref.ref(d.indices), weakref.ref(d.halo), take)

    # -- products

    def mult_transpose(self, x: np.ndarray) -> np.ndarray:
        """y_j = sum over the edges e = i -> j of w_e x_i for the owned agents j, from x
        of the owned agents. Collective (one all-to-all of the terms of the edges that
        point to other ranks' agents)."""
        n = self.domain.n_owned
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (n,):
            raise ValueError(f"ExactTranspose: x must have one value per owned agent ({n}), "
                             f"got shape {x.shape}")
        (got,) = self._route.send(self._rem_w * x[self._rem_src], in_route_order=True)
        b = self._b
        b[:n] = x
        b[n:] = got
        y = np.zeros(n)
        kernels.compiled().risk.transpose_sums(b, self._index, self._coef, self._starts,
                                               self._rows, y)
        return y

    @property
    def n_entries(self) -> int:
        """Edges of this rank's rows that take part in the products."""
        return int(self._loc_edge.shape[0] + self._rem_edge.shape[0])

    @property
    def n_received(self) -> int:
        """Terms this rank receives from other ranks per product."""
        return self._route.n_recv

    # -- lifetime (nothing to free: no PETSc object; there for MatrixOwner)

    def destroy(self) -> None:
        """Nothing to free (the interface of ExposureMatrix). Local."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
