"""PETSc over the engine's partition: exposure matrices, vectors and Krylov solvers.

The only module of the package that imports petsc4py. PETSc is initialised
once per process, on the first domain's communicator, with the options that
follow ``--`` on the command line (:func:`initialize`); options addressed to
this package's objects carry the prefix ``tokensim_`` (``-tokensim_ksp_type
gmres -tokensim_ksp_rtol 1e-10``).

Row ownership is the engine's: rank r owns the matrix rows and vector entries
of its block of the global Hilbert order, so owned agent i is row and entry
``domain.offset + i`` on any number of ranks, and numpy columns of the owned
agents are the local parts of PETSc vectors as they are. The matrix is built
from each rank's own CSR rows; the only communication is one halo exchange
of the ghosts' global positions. Nothing is gathered on one rank.

Every Mat, Vec and KSP made here is registered and must be destroyed
(collectively, in the same order on every rank: PETSc's destructors are
collective, so leaving them to the garbage collector, which runs at
different times on different ranks, could deadlock). :func:`live_objects`
lists what is not destroyed yet; the tests check that it ends empty.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..errors import SolverError
from ..parallel.mpi import allreduce_any

PREFIX = "tokensim_"
# Object options without the package prefix would silently do nothing: refused.
_OBJECT_OPTIONS = ("-ksp_", "-pc_", "-mat_", "-vec_", "-snes_", "-ts_", "-eps_")

_PETSc = None
_LIVE: dict[int, object] = {}


# ----------------------------------------------------------------------------- set-up

def split_command_line(argv: list[str]) -> tuple[list[str], list[str]]:
    """(arguments before ``--``, PETSc options after it). Local."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_options(options) -> list[tuple[str, str | None]]:
    """``[-name [value] ...]`` as (name without the dash, value or None). Local.

    Raises ValueError for a token that is neither an option nor follows one,
    and for object options without the ``tokensim_`` prefix (``-ksp_type``:
    use ``-tokensim_ksp_type``), which PETSc would otherwise ignore silently.
    """
    pairs: list[tuple[str, str | None]] = []
    for token in [str(t) for t in (options or []) if str(t)]:
        if token.startswith("-") and not _is_number(token):
            if token.startswith(_OBJECT_OPTIONS):
                raise ValueError(f"PETSc option {token!r} lacks the prefix of this package's "
                                 f"objects: use -{PREFIX}{token[1:]}")
            pairs.append((token.lstrip("-"), None))
        elif pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], token)
        else:
            raise ValueError(f"PETSc options: {token!r} follows no option name")
    return pairs


def missing() -> str | None:
    """Why petsc4py cannot be imported here (None when it can). Local."""
    try:
        import petsc4py  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def initialize(comm, options=None):
    """Initialise PETSc once, on ``comm``, with ``options``; return the PETSc module.

    ``options`` is a list of command-line tokens (what follows ``--``). On the
    first call they go to ``PetscInitialize`` (so global options such as
    ``-log_view`` work); later calls add them to the options database, where
    the next object set up from options reads them. Objects are always created
    on their own domain's communicator, so domains on other communicators can
    use PETSc after the first. Collective on ``comm`` the first time.
    """
    global _PETSc
    pairs = parse_options(options)
    if _PETSc is None:
        try:
            import petsc4py
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError(f"{exc}: petsc4py is needed for the risk measures; install "
                              "python3-petsc4py and export PETSC_DIR (see the Makefile)") from exc
        args = []
        for name, value in pairs:
            args += [f"-{name}"] + ([value] if value is not None else [])
        petsc4py.init(args, comm=comm)
        from petsc4py import PETSc

        _PETSc = PETSc
    # Also into the database: PETSc may have been started elsewhere before (then
    # petsc4py.init does nothing), and later calls have no other way in.
    db = _PETSc.Options()
    for name, value in pairs:
        db.setValue(name, value)
    return _PETSc


def petsc(comm=None):
    """The PETSc module, initialised without options on ``comm`` if not yet done."""
    if _PETSc is None:
        from ..parallel.mpi import world

        initialize(comm if comm is not None else world())
    return _PETSc


# ----------------------------------------------------------------------------- registry

def track(obj):
    """Register a PETSc object for :func:`destroy` and :func:`live_objects`. Local."""
    _LIVE[id(obj)] = obj
    return obj


def destroy(*objs) -> None:
    """Destroy PETSc objects (None is skipped) and forget them. Collective on their comms."""
    for obj in objs:
        if obj is None:
            continue
        _LIVE.pop(id(obj), None)
        obj.destroy()


def live_objects() -> list:
    """PETSc objects made by this package and not destroyed yet. Local."""
    return list(_LIVE.values())


# ----------------------------------------------------------------------------- layout

def slot_positions(domain) -> np.ndarray:
    """Global Hilbert position of every local slot (owned, then ghosts), int64. Collective.

    Owned slot i is at ``domain.offset + i``; the ghosts' positions come from
    their owners by one halo exchange of that column.
    """
    n = domain.n_owned
    pos = np.empty(n + domain.halo.n_ghost, dtype=np.int64)
    pos[:n] = domain.offset + np.arange(n, dtype=np.int64)
    domain.halo.exchange(pos)
    return pos


def _check_layout(domain, n_local_nnz: int) -> None:
    """The engine's blocks must be PETSc's: rank order, contiguous, within int32."""
    comm = domain.comm
    start = comm.exscan(domain.n_owned) or 0
    bad = start != domain.offset
    too_big = domain.n_total >= 2**31 - 1 or n_local_nnz >= 2**31 - 1
    if allreduce_any(comm, bad):
        raise RuntimeError("the engine's owned blocks are not in rank order; PETSc's row "
                           "ownership cannot follow them")
    if allreduce_any(comm, too_big):
        raise OverflowError("PETSc here uses 32-bit indices: at most 2**31 - 2 agents and "
                            "entries per rank")


# ----------------------------------------------------------------------------- the matrix

def _repeated_entries(indptr: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every entry that repeats an earlier one of its row. Local."""
    degree = np.diff(indptr)
    n = degree.shape[0]
    if n and np.all(degree == degree[0]):
        # Rows of one length (the k-NN networks): sort each row in place of a global sort.
        k = int(degree[0])
        by_row = np.sort(cols.reshape(n, k), axis=1)
        repeat = by_row[:, 1:] == by_row[:, :-1]
        return np.nonzero(repeat)[0].astype(np.int64), by_row[:, 1:][repeat]
    rows = np.repeat(np.arange(n, dtype=np.int64), degree)
    order = np.lexsort((cols, rows))
    r, c = rows[order], cols[order]
    repeat = (r[1:] == r[:-1]) & (c[1:] == c[:-1])
    return r[1:][repeat], c[1:][repeat]


class MatrixOwner:
    """Base of an object that keeps one :class:`ExposureMatrix` (or another object with
    a ``destroy`` method, such as :class:`tokensim_hpc.risk.transpose.ExactTranspose`)
    in ``self.matrix``: :meth:`close`, or leaving a ``with`` block, destroys it.
    Collective."""

    matrix = None

    def close(self) -> None:
        """Destroy the PETSc matrix. Collective."""
        if self.matrix is not None:
            self.matrix.destroy()
            self.matrix = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ExposureMatrix:
    """The domain's edges as a PETSc MPIAIJ matrix in global Hilbert numbering. Collective.

    Edge e of row i (an owned agent) to local slot ``domain.indices[e]`` gives the
    entry ``(offset + i, position of the slot) = values[e]``; duplicate edges add
    up. Rank r owns the rows (and the vector entries) of its Hilbert block; local
    sizes are n_owned x n_owned, global N x N. Preallocation is exact: the number
    of distinct columns of each row in the diagonal block (owned targets) and in
    the off-diagonal block (ghost targets), plus one for an explicit diagonal
    where the row has no edge to itself.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    values : float64 array (number of local edges)
        One value per edge, in CSR order.
    diagonal : float or float64 array (n_owned), optional
        Stores an explicit diagonal entry in every row (0.0 allowed; added to a
        self edge's value), so that :meth:`identity_plus_scaled` can shift the
        diagonal in place.
    options : list of str, optional
        PETSc options, if PETSc is not initialised yet (see :func:`initialize`).

    The values follow the edges with :meth:`update` (in place while the edge
    pattern is unchanged; rebuilt after the domain's halo was rebuilt).
    :meth:`destroy` frees every PETSc object this matrix made.
    """

    def __init__(self, domain, values, diagonal=None, options=None):
        self.domain = domain
        self._pet = initialize(domain.comm, options) if options else petsc(domain.comm)
        self.mat = None
        self._x = self._y = None
        self._derived: list = []
        self._build(values, diagonal)

    # -- construction

    def _csr(self, values, diagonal):
        d = self.domain
        values = np.ascontiguousarray(values, dtype=np.float64)
        if values.shape != (int(d.indptr[-1]),):
            raise ValueError(f"values must have one entry per local edge "
                             f"({int(d.indptr[-1])}), got shape {values.shape}")
        indptr = np.asarray(d.indptr, dtype=np.int64)
        if diagonal is None:
            return indptr, values
        diag = np.broadcast_to(np.asarray(diagonal, dtype=np.float64), (d.n_owned,))
        # One extra entry at the start of every row.
        return indptr + np.arange(d.n_owned + 1), np.insert(values, indptr[:-1], diag)

    def _build(self, values, diagonal):
        PETSc = self._pet
        d = self.domain
        n, n_total = d.n_owned, d.n_total
        _check_layout(d, int(d.indptr[-1]) + n)
        pos = slot_positions(d)
        cols = pos[d.indices]
        del pos
        # Exact preallocation: distinct columns per row in the diagonal block (owned
        # targets) and the off-diagonal block (ghost targets).
        rows_of_edges = np.repeat(np.arange(n, dtype=np.int64), np.diff(d.indptr))
        in_diag = d.indices < n
        d_nnz = np.bincount(rows_of_edges[in_diag], minlength=n)
        o_nnz = np.bincount(rows_of_edges[~in_diag], minlength=n)
        del in_diag
        dup_rows, dup_cols = _repeated_entries(d.indptr, cols)
        dup_diag = (dup_cols >= d.offset) & (dup_cols < d.offset + n)
        d_nnz -= np.bincount(dup_rows[dup_diag], minlength=n)
        o_nnz -= np.bincount(dup_rows[~dup_diag], minlength=n)
        self.with_diagonal = diagonal is not None
        self._diagonal = diagonal
        if self.with_diagonal:
            # One more entry per row, unless the row already has an edge to itself.
            has_self = np.zeros(n, dtype=bool)
            has_self[rows_of_edges[cols == d.offset + rows_of_edges]] = True
            d_nnz += ~has_self
            cols = np.insert(cols, np.asarray(d.indptr[:-1], dtype=np.int64),
                             d.offset + np.arange(n, dtype=np.int64))
        del rows_of_edges
        d_nnz, o_nnz = d_nnz.astype(PETSc.IntType), o_nnz.astype(PETSc.IntType)
        self._cols = cols.astype(PETSc.IntType)
        del cols
        mat = track(PETSc.Mat().create(comm=d.comm))
        self.mat = mat
        mat.setSizes(((n, n_total), (n, n_total)))
        mat.setType(PETSc.Mat.Type.MPIAIJ)
        mat.setOptionsPrefix(PREFIX)
        mat.setPreallocationNNZ((d_nnz, o_nnz))
        # A pattern outside the preallocation is a bug here, never a slow path.
        mat.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
        self.d_nnz, self.o_nnz = d_nnz, o_nnz
        self._set(values, diagonal)
        lo, hi = mat.getOwnershipRange()
        if allreduce_any(d.comm, (lo, hi) != (d.offset, d.offset + n)):
            raise RuntimeError("PETSc's row ownership differs from the engine's blocks")
        # Later edits are value changes only: new entries would mean a new pattern.
        mat.setOption(PETSc.Mat.Option.NEW_NONZERO_LOCATION_ERR, True)
        self._pattern = (weakref.ref(d.indices), weakref.ref(d.halo), int(d.indptr[-1]))

    def _set(self, values, diagonal):
        PETSc = self._pet
        indptr, vals = self._csr(values, diagonal)
        # ADD_VALUES into zeros: duplicate edges (if any) add up, in CSR order.
        self.mat.zeroEntries()
        self.mat.setValuesCSR(indptr.astype(PETSc.IntType), self._cols, vals,
                              addv=PETSc.InsertMode.ADD_VALUES)
        self.mat.assemble()

    def pattern_changed(self) -> bool:
        """Whether the domain's edges changed since the build, on any rank. Collective."""
        d = self.domain
        ref_indices, ref_halo, nnz = self._pattern
        changed = (ref_indices() is not d.indices or ref_halo() is not d.halo
                   or nnz != int(d.indptr[-1]))
        return allreduce_any(d.comm, changed)

    def update(self, values, diagonal=None) -> bool:
        """New edge values (and diagonal; by default the one given before); rebuilt if
        the edge pattern changed. Collective.

        Returns True when the matrix was rebuilt (its PETSc object is then a new
        one, and matrices made by :meth:`identity_plus_scaled` are destroyed).
        """
        if diagonal is None:
            diagonal = self._diagonal
        if self.pattern_changed():
            self.rebuild(values, diagonal)
            return True
        self._set(values, diagonal)
        return False

    def rebuild(self, values, diagonal=None) -> None:
        """Build the matrix again from the domain's current edges. Collective."""
        if diagonal is None:
            diagonal = self._diagonal
        self._destroy_objects()
        self._build(values, diagonal)

    # -- products

    def _vecs(self):
        if self._x is None:
            x, y = self.mat.createVecs()
            self._x, self._y = track(x), track(y)
        return self._x, self._y

    def mult(self, x: np.ndarray) -> np.ndarray:
        """y = A x on the owned entries (numpy in, new numpy array out). Collective."""
        vx, vy = self._vecs()
        vx.setArray(x)
        self.mat.mult(vx, vy)
        return vy.getArray(readonly=True).copy()

    def mult_transpose(self, x: np.ndarray) -> np.ndarray:
        """y = A^T x on the owned entries. Collective."""
        vx, vy = self._vecs()
        vx.setArray(x)
        self.mat.multTranspose(vx, vy)
        return vy.getArray(readonly=True).copy()

    def identity_plus_scaled(self, column_scale: np.ndarray, out=None):
        """The PETSc matrix I + A diag(s), made (or overwritten in ``out``). Collective.

        Needs the explicit diagonal (``diagonal=`` at construction), so that the
        shift writes into stored entries. ``out`` must come from an earlier call
        on this matrix (same pattern); it is destroyed with this matrix.
        """
        if not self.with_diagonal:
            raise ValueError("identity_plus_scaled needs a matrix built with diagonal=")
        PETSc = self._pet
        if out is None:
            out = track(self.mat.duplicate(copy=True))
            self._derived.append(out)
        else:
            self.mat.copy(out, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        vs, _ = self._vecs()
        vs.setArray(column_scale)
        out.diagonalScale(None, vs)
        out.shift(1.0)
        return out

    def info(self) -> dict:
        """PETSc's matrix information summed over ranks (nz_allocated, nz_used,
        nz_unneeded, mallocs ...). Collective."""
        return self.mat.getInfo(self._pet.Mat.InfoType.GLOBAL_SUM)

    @property
    def n_entries(self) -> int:
        """Stored entries of this rank's rows (diagonal and off-diagonal blocks)."""
        return int(self.d_nnz.sum() + self.o_nnz.sum())

    # -- lifetime

    def _destroy_objects(self):
        destroy(*self._derived, self._x, self._y, self.mat)
        self._derived, self._x, self._y, self.mat = [], None, None, None

    def destroy(self) -> None:
        """Destroy every PETSc object of this matrix. Collective."""
        self._destroy_objects()
        self._cols = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()


# ----------------------------------------------------------------------------- solvers

def _reason_name(PETSc, reason: int) -> str:
    """PETSc's name of a KSPConvergedReason (``DIVERGED_MAX_IT`` ...). Local."""
    names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items()
             if k.isupper() and isinstance(v, int)}
    return names.get(int(reason), "unknown")


class TransposeSolver:
    """A KSP that solves A^T x = b, set up from the ``tokensim_`` options. Collective.

    Defaults (each overridden by options): GMRES, Jacobi preconditioning,
    relative tolerance ``rtol``, absolute tolerance ``atol``, at most
    ``max_it`` iterations. A solve that does not converge raises
    :class:`SolverError`.
    """

    def __init__(self, comm, rtol=1e-12, atol=1e-50, max_it=10_000):
        PETSc = petsc(comm)
        self._pet = PETSc
        self.ksp = track(PETSc.KSP().create(comm=comm))
        self.ksp.setOptionsPrefix(PREFIX)
        self.ksp.setType(PETSc.KSP.Type.GMRES)
        self.ksp.getPC().setType(PETSc.PC.Type.JACOBI)
        self.ksp.setTolerances(rtol=rtol, atol=atol, max_it=max_it)
        self.ksp.setInitialGuessNonzero(True)
        self.ksp.setFromOptions()
        self.iterations = 0       # Krylov iterations of all solves
        self.last_iterations = 0  # those of the last solve
        self._b = self._x = None

    def solve(self, mat, b: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """x with A^T x = b, from the first guess ``x0`` (owned entries). Collective."""
        if self._b is None:
            x, b_vec = mat.createVecs()
            self._x, self._b = track(x), track(b_vec)
        self.ksp.setOperators(mat)
        self._b.setArray(b)
        self._x.setArray(x0)
        self.ksp.solveTranspose(self._b, self._x)
        reason = self.ksp.getConvergedReason()
        self.iterations += self.ksp.getIterationNumber()
        self.last_iterations = self.ksp.getIterationNumber()
        if reason < 0:
            raise SolverError(f"the linear solve did not converge (KSP reason {reason}: "
                              f"{_reason_name(self._pet, reason)}, "
                              f"{self.last_iterations} iterations); see "
                              f"-{PREFIX}ksp_converged_reason and -{PREFIX}ksp_monitor",
                              reason=int(reason), iterations=int(self.last_iterations))
        return self._x.getArray(readonly=True).copy()

    def describe(self) -> str:
        """KSP and PC types, e.g. ``gmres/jacobi``. Local."""
        return f"{self.ksp.getType()}/{self.ksp.getPC().getType()}"

    def destroy(self) -> None:
        """Destroy the KSP and its vectors. Collective."""
        destroy(self._x, self._b, self.ksp)
        self._x = self._b = self.ksp = None
