"""Networks and serial references for the risk-measure tests (helper module).

``domain_from_edges`` puts a small global edge list on any number of ranks as
an engine domain (agent ids in blocks, in id order); the references are
plain numpy/scipy.sparse versions of the formulas in
``tokensim_hpc/risk/debtrank.py`` and ``clearing.py``, written from the papers.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from tokensim_hpc.engine import Domain
from tokensim_hpc.parallel.directory import Directory
from tokensim_hpc.parallel.halo import HaloPlan


def domain_from_edges(comm, n, source, target):
    """(domain, local_edges): agents 0..n-1 in blocks of id order, edges source -> target.

    ``local_edges`` indexes the global edge list in this rank's CSR order, so that
    ``values[local_edges]`` are the local edge values. Collective.
    """
    source, target = np.asarray(source, dtype=np.int64), np.asarray(target, dtype=np.int64)
    lo, hi = comm.rank * n // comm.size, (comm.rank + 1) * n // comm.size
    gid = np.arange(lo, hi, dtype=np.int64)
    order = np.argsort(source, kind="stable")
    local_edges = order[(source[order] >= lo) & (source[order] < hi)]
    indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(source[local_edges] - lo, minlength=hi - lo), out=indptr[1:])
    halo = HaloPlan(comm, gid, target[local_edges], Directory(comm, gid, n))
    interior, boundary = halo.split_rows(indptr)
    domain = Domain(comm=comm, n_total=n, offset=lo, cuts=np.empty(0), gid=gid,
                    x=np.zeros(hi - lo), y=np.zeros(hi - lo), indptr=indptr,
                    indices=halo.edge_local, weights=np.empty(0), uniform_weight=0.0,
                    halo=halo, interior_rows=interior, boundary_rows=boundary)
    return domain, local_edges


def global_matrix(domain, values):
    """The N x N scipy CSR matrix of a domain that holds every agent (one rank)."""
    n = domain.n_owned
    assert n == domain.n_total and domain.halo.n_ghost == 0
    return sp.csr_matrix((values, domain.indices, domain.indptr), shape=(n, n))


def reference_debtrank(liability, equity, value, shocked, psi=1.0):
    """DebtRank by the paper's rules; ``liability[i, j]`` is what i owes j."""
    L = sp.csr_matrix(liability)
    W = L.multiply(1.0 / np.asarray(equity)[None, :]).tocsr()
    W.data = np.minimum(1.0, W.data)
    WT = W.T.tocsr()
    v = np.asarray(value, dtype=np.float64) / math.fsum(value)
    n = L.shape[0]
    h = np.zeros(n)
    state = np.zeros(n, dtype=np.int8)  # 0 U, 1 D, 2 I
    h[shocked] = psi
    state[shocked] = 1
    h1 = h.copy()
    steps = 0
    while np.any(state == 1):
        d = state == 1
        h = np.minimum(1.0, h + WT @ np.where(d, h, 0.0))
        state[d] = 2
        state[(state == 0) & (h > 0)] = 1
        steps += 1
    total, initial = math.fsum(h * v), math.fsum(h1 * v)
    return {"debtrank": total - initial, "total_loss": total, "initial_loss": initial,
            "steps": steps, "h": h, "n_distressed": int(np.count_nonzero(h > 0)),
            "n_defaulted": int(np.count_nonzero(h >= 1))}


def reference_clearing(liability, external):
    """Greatest Eisenberg-Noe clearing vector by the fictitious default algorithm,
    each round's linear system solved directly (scipy's spsolve)."""
    L = sp.csr_matrix(liability)
    n = L.shape[0]
    pbar = np.asarray(L.sum(axis=1)).ravel()
    inv = np.divide(1.0, pbar, out=np.zeros(n), where=pbar > 0)
    PiT = (sp.diags(inv) @ L).T.tocsr()
    e = np.asarray(external, dtype=np.float64)
    p = pbar.copy()
    default = np.zeros(n, dtype=bool)
    rounds = 0
    while True:
        new = ~default & (PiT @ p + e < pbar)
        if not new.any():
            break
        default |= new
        rounds += 1
        S = sp.diags(default.astype(np.float64))
        A = (sp.identity(n) - S @ PiT).tocsc()
        p = spla.spsolve(A, np.where(default, e, pbar))
        p = np.where(default, np.clip(p, 0.0, pbar), pbar)
    return {"payments": p, "obligations": pbar, "defaulted": p < pbar, "rounds": rounds,
            "shortfall": math.fsum(pbar - p)}


# ----------------------------------------------------------------------------- textbook cases
# Each check runs on any number of ranks (every rank calls it), enters every
# collective, and returns this rank's list of failures (empty when all holds).

def _close(got, want, tol=0.0):
    return bool(np.all(np.abs(np.asarray(got) - np.asarray(want)) <= tol))


def check_clearing_textbook(comm):
    """Three banks, each round of the fictitious default algorithm worked by hand.

    Bank 0 owes bank 1 10; bank 1 owes banks 0 and 2 5 each; bank 2 owes bank 0 4.
    External assets e = (0, 0, 10). So pbar = (10, 10, 4), and
    Pi = [[0, 1, 0], [.5, 0, .5], [1, 0, 0]]; with p = pbar everyone receives
    Pi^T p + e = (.5*10 + 4, 10, .5*10 + 10) = (9, 10, 15).
    Round 1: only bank 0 cannot pay (9 < 10; bank 1 receives exactly its 10).
      Bank 0 pays all it has, the others in full: p0 = .5*10 + 4 = 9.
    Round 2: bank 1 now receives 9 < 10 and defaults too:
      p0 = .5 p1 + 4, p1 = p0  =>  p0 = p1 = 8.
    Bank 2 receives .5*8 + 10 = 14 >= 4: no further default.
    Clearing vector (8, 8, 4), defaults {0, 1}, shortfall 2 + 2 = 4, two rounds.
    """
    from tokensim_hpc.risk import Clearing

    source, target = [0, 1, 1, 2], [1, 0, 2, 0]
    liability = np.array([10.0, 5.0, 5.0, 4.0])
    d, edges = domain_from_edges(comm, 3, source, target)
    e = np.array([0.0, 0.0, 10.0])[d.gid]
    out = []
    with Clearing(d, liability[edges]) as clearing:
        fda = clearing.solve(e)
        fixed = clearing.solve(e, method="fixed_point", tol=1e-15)
    want = np.array([8.0, 8.0, 4.0])[d.gid]
    if not _close(fda.payments, want, 1e-12):
        out.append(f"fda payments {fda.payments} != {want}")
    if not _close(fixed.payments, want, 1e-12):
        out.append(f"fixed-point payments {fixed.payments} != {want}")
    if fda.iterations != 2:
        out.append(f"fda rounds {fda.iterations} != 2")
    for r in (fda, fixed):
        if r.n_defaulted != 2 or abs(r.shortfall - 4.0) > 1e-11:
            out.append(f"{r.method}: {r.n_defaulted} defaults, shortfall {r.shortfall}")
        if not np.array_equal(r.defaulted, np.array([True, True, False])[d.gid]):
            out.append(f"{r.method}: defaulted {r.defaulted}")
        if not _close(r.obligations, np.array([10.0, 10.0, 4.0])[d.gid]):
            out.append(f"{r.method}: pbar {r.obligations}")
    d.halo.destroy()
    return out


def check_debtrank_chain(comm):
    """0 -> 1 -> 2 -> 3, each owing the next 1 with equity 2: W = 1/2 along the chain.

    Shock 0 (psi = 1): h(1) = (1, 0, 0, 0); each step the newest distressed agent
    passes half of its distress on: h(T) = (1, 1/2, 1/4, 1/8). Steps: t = 2, 3, 4
    distress agents 1, 2, 3; at t = 5 agent 3 (no creditor) becomes inactive
    and no agent is distressed: 4 steps. With v = (1/8, 1/4, 1/4, 3/8):
    R = 1/4 * 1/2 + 1/4 * 1/4 + 3/8 * 1/8 = 15/64, total loss 15/64 + 1/8 = 23/64.
    Owing 3 with equity 2 instead caps W at 1: everyone's h = 1, R = 7/8.
    All numbers are dyadic, so the results are exact on any rank count.
    """
    from tokensim_hpc.risk import debtrank

    d, edges = domain_from_edges(comm, 4, [0, 1, 2], [1, 2, 3])
    equity = np.full(d.n_owned, 2.0)
    value = np.array([1 / 8, 1 / 4, 1 / 4, 3 / 8])[d.gid]
    out = []
    r = debtrank(d, np.ones(3)[edges], equity, value, [0])
    if (r.debtrank, r.total_loss, r.steps) != (15 / 64, 23 / 64, 4):
        out.append(f"chain: R {r.debtrank}, total {r.total_loss}, steps {r.steps}")
    if not np.array_equal(r.h, np.array([1.0, 0.5, 0.25, 0.125])[d.gid]):
        out.append(f"chain: h {r.h}")
    if (r.n_distressed, r.n_defaulted) != (4, 1):
        out.append(f"chain: {r.n_distressed} distressed, {r.n_defaulted} defaulted")
    capped = debtrank(d, np.full(3, 3.0)[edges], equity, value, [0])
    if (capped.debtrank, capped.n_defaulted) != (7 / 8, 4):
        out.append(f"capped chain: R {capped.debtrank}, {capped.n_defaulted} defaulted")
    d.halo.destroy()
    return out


def check_debtrank_star(comm):
    """A star: centre 0 and leaves 1..4, each leaf owing the centre 1 and the centre
    owing each leaf 1. Equity: centre 2, leaves 4. So a leaf's default takes
    W_leaf,centre = 1/2 of the centre's equity, the centre's 1/4 of a leaf's.

    Shock leaf 1: t=2 centre h = 1/2 (D); t=3 every leaf gets 1/4 * 1/2 = 1/8
    (leaf 1 stays at 1), leaves 2..4 become D, the centre inactive; t=4 the centre,
    inactive, still takes 3 * 1/2 * 1/8 = 3/16 (h = 11/16), leaves 2..4 turn
    inactive and nobody is distressed: 3 steps. With v = (1/2, 1/8, 1/8, 1/8, 1/8):
    R = 1/2 * 11/16 + 3 * 1/8 * 1/8 = 25/64, total loss 25/64 + 1/8 = 33/64.
    Shock the centre: t=2 each leaf h = 1/4 (D); t=3 the centre is inactive and
    the leaves turn inactive: 2 steps, R = 4 * 1/8 * 1/4 = 1/8.
    """
    from tokensim_hpc.risk import DebtRank

    leaves = [1, 2, 3, 4]
    source, target = [0] * 4 + leaves, leaves + [0] * 4
    d, edges = domain_from_edges(comm, 5, source, target)
    equity = np.array([2.0, 4.0, 4.0, 4.0, 4.0])[d.gid]
    value = np.array([1 / 2, 1 / 8, 1 / 8, 1 / 8, 1 / 8])[d.gid]
    out = []
    with DebtRank(d, np.ones(8)[edges], equity, value) as dr:
        leaf = dr.run([1])
        centre = dr.run([0])
    if (leaf.debtrank, leaf.total_loss, leaf.steps) != (25 / 64, 33 / 64, 3):
        out.append(f"leaf shock: R {leaf.debtrank}, total {leaf.total_loss}, {leaf.steps}")
    if not np.array_equal(leaf.h, np.array([11 / 16, 1.0, 1 / 8, 1 / 8, 1 / 8])[d.gid]):
        out.append(f"leaf shock: h {leaf.h}")
    if (centre.debtrank, centre.steps) != (1 / 8, 2):
        out.append(f"centre shock: R {centre.debtrank}, steps {centre.steps}")
    d.halo.destroy()
    return out


def check_missing_shock_refused(comm):
    """Shocking an id no agent has fails on every rank with the id in the message."""
    from tokensim_hpc.errors import RiskInputError
    from tokensim_hpc.risk import debtrank

    d, edges = domain_from_edges(comm, 4, [0, 1, 2], [1, 2, 3])
    out = []
    for bad in (4, -1, 1234567):
        try:
            debtrank(d, np.ones(3)[edges], np.ones(d.n_owned), np.ones(d.n_owned), [0, bad])
            out.append(f"shock of {bad} accepted")
        except RiskInputError as exc:
            if f"no agent has id {bad}" not in str(exc):
                out.append(f"message does not name {bad}: {exc}")
    d.halo.destroy()
    return out


# ----------------------------------------------------------------------------- random networks

# Tolerances of the comparisons with the serial references. DebtRank: PETSc sums
# each agent's incoming distress in an order that depends on the partition, so
# h (in [0, 1]) and R agree to rounding: 1e-13 absolute. Clearing: Krylov solves
# to a relative residual of 1e-12 and a fixed point stopped at changes of
# 1e-13 max(pbar): payments and shortfall within 1e-9 max(pbar) (per agent) and
# 1e-9 (relative) respectively.
DEBTRANK_TOL = 1e-13
CLEARING_RTOL = 1e-9
RANDOM_SETS = ["agents.n=2000", "network.k=6", "network.p=0.1"]
SHOCKED = [5, 777, 1999]


def random_case(comm, equity_range=(1.0, 5.0)):
    """(domain, sheets, reference domain on one rank, its sheets) of the random network."""
    from mpi4py import MPI

    from tokensim_hpc.engine import build_domain
    from tokensim_hpc.risk import balance_sheets
    from tokensim_hpc.scenario import resolve
    from tokensim_hpc.timing import Timers

    sc = resolve("b1", RANDOM_SETS)
    d = build_domain(comm, sc, Timers())
    ref = build_domain(MPI.COMM_SELF, sc, Timers())
    return (d, balance_sheets(d, 11, equity_range), ref,
            balance_sheets(ref, 11, equity_range))


def check_random_network(comm):
    """DebtRank and both clearing methods equal the scipy references within the
    stated tolerances; the discrete outcomes (steps, counts, default sets) exactly."""
    from tokensim_hpc.risk import Clearing, DebtRank

    out = []
    d, sheets, ref, ref_sheets = random_case(comm, equity_range=(2.0, 12.0))
    mine = slice(d.offset, d.offset + d.n_owned)
    if not np.array_equal(ref.gid[mine], d.gid):
        out.append("the network is not the same as on one rank")
    L = global_matrix(ref, ref_sheets.liability)
    rank_of = np.argsort(ref.gid)  # global id -> Hilbert position on one rank
    want = reference_debtrank(L, ref_sheets.equity, ref_sheets.value, rank_of[SHOCKED])
    with DebtRank(d, sheets.liability, sheets.equity, sheets.value) as dr:
        got = dr.run(SHOCKED)
    if abs(got.debtrank - want["debtrank"]) > DEBTRANK_TOL:
        out.append(f"DebtRank {got.debtrank} != {want['debtrank']}")
    if abs(got.total_loss - want["total_loss"]) > DEBTRANK_TOL:
        out.append(f"total loss {got.total_loss} != {want['total_loss']}")
    if not _close(got.h, want["h"][mine], DEBTRANK_TOL):
        out.append(f"h differs by {np.abs(got.h - want['h'][mine]).max()}")
    for key in ("steps", "n_distressed", "n_defaulted"):
        if getattr(got, key) != want[key]:
            out.append(f"{key} {getattr(got, key)} != {want[key]}")
    if not (2 < want["steps"] and 0 < want["n_defaulted"] < want["n_distressed"] < ref.n_owned):
        out.append(f"the random case is degenerate: {want['steps']} steps")
    en = reference_clearing(L, ref_sheets.external)
    scale = en["obligations"].max()
    with Clearing(d, sheets.liability) as clearing:
        results = [clearing.solve(sheets.external),
                   clearing.solve(sheets.external, method="fixed_point", tol=1e-13)]
    for r in results:
        if not _close(r.payments, en["payments"][mine], CLEARING_RTOL * scale):
            out.append(f"{r.method}: payments differ by "
                       f"{np.abs(r.payments - en['payments'][mine]).max()}")
        if not np.array_equal(r.defaulted, en["defaulted"][mine]):
            out.append(f"{r.method}: default sets differ")
        if abs(r.shortfall - en["shortfall"]) > CLEARING_RTOL * en["shortfall"]:
            out.append(f"{r.method}: shortfall {r.shortfall} != {en['shortfall']}")
        if not np.array_equal(r.obligations, en["obligations"][mine]):
            out.append(f"{r.method}: pbar is not bit-identical")
    if results[0].iterations != en["rounds"]:
        out.append(f"fda rounds {results[0].iterations} != {en['rounds']}")
    if not 0 < int(en["defaulted"].sum()) < ref.n_owned or en["rounds"] < 2:
        out.append("the random case is degenerate: no cascade of defaults")
    d.halo.destroy()
    ref.halo.destroy()
    return out


# ----------------------------------------------------------------------------- the matrix

def _engine_mult(d, values, x):
    """sum_e values[e] * x[target of e] per owned row, by the engine's halo exchange."""
    col = np.zeros(d.n_owned + d.halo.n_ghost)
    col[:d.n_owned] = x
    d.halo.exchange(col)
    return row_sums(d.indptr, values * col[d.indices])


def _engine_mult_transpose(d, values, x):
    """sum over in-edges of values[e] * x[source of e]: terms added at the target slots,
    ghost slots sent back to their owners (the engine's reverse halo exchange)."""
    col = np.zeros(d.n_owned + d.halo.n_ghost)
    source = np.repeat(np.arange(d.n_owned), np.diff(d.indptr))
    np.add.at(col, d.indices, values * x[source])
    d.halo.reduce_ghosts(col, np.add)
    return col[:d.n_owned]


def row_sums(indptr, values):
    from tokensim_hpc.risk._inputs import row_sums as sums

    return sums(indptr, values)


def _integer_edges(d, salt):
    """Small integers per edge (negative, zero and positive), keyed by source id and slot."""
    source = np.repeat(d.gid, np.diff(d.indptr))
    slot = np.arange(int(d.indptr[-1])) - np.repeat(d.indptr[:-1], np.diff(d.indptr))
    return ((source * 7 + slot * 3 + salt) % 11 - 5).astype(np.float64)


def check_exposure_matrix(comm):
    """PETSc products equal the engine's halo-exchange sums (exactly, on integer data),
    preallocation is exact, ownership is the engine's, values follow in place and
    the matrix is rebuilt when the edges change; every PETSc object is destroyed."""
    from tokensim_hpc.linalg import ExposureMatrix, live_objects, slot_positions

    out = []
    d, _, ref, _ = random_case(comm)
    n = d.n_owned
    before = len(live_objects())
    rank_of = np.argsort(ref.gid)
    slot_gid = np.concatenate((d.gid, d.halo.ghost_gid))
    if not np.array_equal(slot_positions(d), rank_of[slot_gid]):
        out.append("slot positions are not the global Hilbert positions")
    x = (d.gid % 13 - 6).astype(np.float64)
    values = _integer_edges(d, 0)
    m = ExposureMatrix(d, values)
    mats = [m.mat]
    if m.mat.getOwnershipRange() != (d.offset, d.offset + n):
        out.append(f"ownership {m.mat.getOwnershipRange()} != engine block")
    if m.mat.getType() != "mpiaij" or m.mat.getSize() != (d.n_total, d.n_total):
        out.append(f"matrix {m.mat.getType()} {m.mat.getSize()}")
    info = m.info()
    edges = comm.allreduce(int(d.indptr[-1]))
    if (info["nz_unneeded"], info["mallocs"], info["nz_used"]) != (0, 0, edges):
        out.append(f"preallocation not exact: {info}")
    if not np.array_equal(m.d_nnz + m.o_nnz, np.diff(d.indptr)):
        out.append("d_nnz + o_nnz is not the row length")
    if not np.array_equal(m.mult(x), _engine_mult(d, values, x)):
        out.append("MatMult != halo-exchange neighbour sum (integer data)")
    if not np.array_equal(m.mult_transpose(x), _engine_mult_transpose(d, values, x)):
        out.append("MatMultTranspose != reverse halo sum (integer data)")
    # Floating-point data: the same sums in another order, equal to rounding.
    fvalues = np.sin(_integer_edges(d, 1) + 0.25)
    fx = np.cos(d.gid.astype(np.float64))
    if m.update(fvalues):
        out.append("an unchanged pattern was rebuilt")
    if m.mat is not mats[0]:
        out.append("the in-place update made a new matrix")
    got, want = m.mult(fx), _engine_mult(d, fvalues, fx)
    if not _close(got, want, 1e-13):
        out.append(f"float MatMult differs by {np.abs(got - want).max()}")
    # New edges: every agent's first edge now points at agent (gid + 1) mod N.
    targets = d.edge_targets().copy()
    targets[d.indptr[:-1]] = (d.gid + 1) % d.n_total
    d.rebuild_halo(targets)
    values = _integer_edges(d, 2)
    if not m.update(values):
        out.append("a changed pattern was not rebuilt")
    mats.append(m.mat)
    if not np.array_equal(m.mult(x), _engine_mult(d, values, x)):
        out.append("MatMult after the rebuild != halo-exchange sum")
    if m.info()["nz_unneeded"] != 0:
        out.append("preallocation after the rebuild not exact")
    vecs = [m._x, m._y]
    m.destroy()
    if len(live_objects()) != before or any(o.handle for o in mats + vecs):
        out.append(f"PETSc objects left: {live_objects()}")
    d.halo.destroy()
    ref.halo.destroy()
    return out


def check_duplicates_and_self_edges(comm):
    """Repeated edges add up, a self edge meets the explicit diagonal, and the
    preallocation stays exact: 0->1 twice, 1->1, 2->0, 3->2 twice, 3->0."""
    from tokensim_hpc.linalg import ExposureMatrix

    source, target = [0, 0, 1, 2, 3, 3, 3], [1, 1, 1, 0, 2, 2, 0]
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    d, edges = domain_from_edges(comm, 4, source, target)
    dense = np.zeros((4, 4))
    np.add.at(dense, (source, target), values)
    dense += 0.5 * np.eye(4)
    x_all = np.array([1.0, -2.0, 3.0, -5.0])
    out = []
    with ExposureMatrix(d, values[edges], diagonal=0.5) as m:
        info = m.info()
        if (info["nz_used"], info["nz_unneeded"]) != (np.count_nonzero(dense), 0):
            out.append(f"preallocation with repeats not exact: {info}")
        if not np.array_equal(m.mult(x_all[d.gid]), (dense @ x_all)[d.gid]):
            out.append("product with repeated and self edges wrong")
        if not np.array_equal(m.mult_transpose(x_all[d.gid]), (dense.T @ x_all)[d.gid]):
            out.append("transposed product with repeated and self edges wrong")
    d.halo.destroy()
    return out
