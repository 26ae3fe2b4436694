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
    # A copy: scipy may sort a matrix's indices in place (abs() does), and these are
    # the domain's.
    return sp.csr_matrix((values, domain.indices, domain.indptr), shape=(n, n), copy=True)


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


def _same_bits(got, want):
    """The same float64 values bit for bit (0.0 and -0.0 differ, NaNs compare)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and bool(np.all(got.view(np.uint64) == want.view(np.uint64)))


def _refusal(fn):
    """The message of the RiskInputError ``fn`` raises, or "accepted"."""
    from tokensim_hpc.errors import RiskInputError

    try:
        fn()
    except RiskInputError as exc:
        return str(exc)
    return "accepted"


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

    The fixed point from pbar: p0 = min(10, .5 p1 + 4), p1 = min(10, p0) gives
    p0 = 9, 9, 8.5, 8.5, ..., 8 + 2^-k: dyadic, exact in floating point, down to
    8 + 2^-50, which rounds to 8. With tol = 0 (stop when nothing changes) the
    exact solver ends at (8, 8, 4) exactly, on any rank count. It cannot run
    ``fda``: refused alike on every rank.
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
    with Clearing(d, liability[edges], solver="exact") as clearing:
        exact = clearing.solve(e, tol=0.0)
        refused = _refusal(lambda: clearing.solve(e, method="fda"))
    want = np.array([8.0, 8.0, 4.0])[d.gid]
    if not _close(fda.payments, want, 1e-12):
        out.append(f"fda payments {fda.payments} != {want}")
    if not _close(fixed.payments, want, 1e-12):
        out.append(f"fixed-point payments {fixed.payments} != {want}")
    if fda.iterations != 2:
        out.append(f"fda rounds {fda.iterations} != 2")
    if exact.method != "fixed_point" or not _same_bits(exact.payments, want):
        out.append(f"exact {exact.method}: payments {exact.payments} != {want}")
    if (exact.shortfall, exact.residual) != (4.0, 0.0):
        out.append(f"exact: shortfall {exact.shortfall}, residual {exact.residual}")
    if "'fda' is not possible with solver='exact'" not in refused:
        out.append(f"fda with the exact solver: {refused}")
    for r in (fda, fixed, exact):
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
    All numbers are dyadic, so the results are exact on any rank count, with
    either solver.
    """
    from tokensim_hpc.risk import SOLVERS, debtrank

    d, edges = domain_from_edges(comm, 4, [0, 1, 2], [1, 2, 3])
    equity = np.full(d.n_owned, 2.0)
    value = np.array([1 / 8, 1 / 4, 1 / 4, 3 / 8])[d.gid]
    out = []
    for solver in SOLVERS:
        r = debtrank(d, np.ones(3)[edges], equity, value, [0], solver=solver)
        if (r.debtrank, r.total_loss, r.steps) != (15 / 64, 23 / 64, 4):
            out.append(f"{solver} chain: R {r.debtrank}, total {r.total_loss}, "
                       f"steps {r.steps}")
        if not _same_bits(r.h, np.array([1.0, 0.5, 0.25, 0.125])[d.gid]):
            out.append(f"{solver} chain: h {r.h}")
        if (r.n_distressed, r.n_defaulted) != (4, 1):
            out.append(f"{solver} chain: {r.n_distressed} distressed, "
                       f"{r.n_defaulted} defaulted")
        capped = debtrank(d, np.full(3, 3.0)[edges], equity, value, [0], solver=solver)
        if (capped.debtrank, capped.n_defaulted) != (7 / 8, 4):
            out.append(f"{solver} capped chain: R {capped.debtrank}, "
                       f"{capped.n_defaulted} defaulted")
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
    the leaves turn inactive: 2 steps, R = 4 * 1/8 * 1/4 = 1/8. The same with
    either solver; an unknown solver is refused alike on every rank.
    """
    from tokensim_hpc.risk import SOLVERS, DebtRank

    leaves = [1, 2, 3, 4]
    source, target = [0] * 4 + leaves, leaves + [0] * 4
    d, edges = domain_from_edges(comm, 5, source, target)
    equity = np.array([2.0, 4.0, 4.0, 4.0, 4.0])[d.gid]
    value = np.array([1 / 2, 1 / 8, 1 / 8, 1 / 8, 1 / 8])[d.gid]
    out = []
    for solver in SOLVERS:
        with DebtRank(d, np.ones(8)[edges], equity, value, solver=solver) as dr:
            leaf = dr.run([1])
            centre = dr.run([0])
        if (leaf.debtrank, leaf.total_loss, leaf.steps) != (25 / 64, 33 / 64, 3):
            out.append(f"{solver} leaf shock: R {leaf.debtrank}, total {leaf.total_loss}, "
                       f"{leaf.steps}")
        if not _same_bits(leaf.h, np.array([11 / 16, 1.0, 1 / 8, 1 / 8, 1 / 8])[d.gid]):
            out.append(f"{solver} leaf shock: h {leaf.h}")
        if (centre.debtrank, centre.steps) != (1 / 8, 2):
            out.append(f"{solver} centre shock: R {centre.debtrank}, steps {centre.steps}")
    refused = _refusal(lambda: DebtRank(d, np.ones(8)[edges], equity, value, solver="scipy"))
    if refused != "solver must be one of ('petsc', 'exact'), got 'scipy'":
        out.append(f"unknown solver: {refused}")
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
# each agent's incoming distress in an order that depends on the partition, and
# the exact solver and scipy each in an order of their own, so h (in [0, 1]) and
# R agree with the reference, and the two solvers with each other, to rounding:
# 1e-13 absolute (3e-17 seen). Clearing: Krylov solves to a relative residual of
# 1e-12 and fixed points stopped at changes of 1e-13 max(pbar): payments and
# shortfall within 1e-9 max(pbar) (per agent) and 1e-9 (relative) respectively
# against the reference (5e-14 and 3e-15 seen with the exact solver). The two
# solvers' fixed points iterate the same map with the same stop rule, so they
# agree more closely: within 1e-11 max(pbar) (an extra step would move p by at
# most 1e-13 max(pbar); 2e-16 seen). The exact solver's results are compared bit
# for bit with the exact solver's on one rank.
DEBTRANK_TOL = 1e-13
CLEARING_RTOL = 1e-9
FIXED_POINTS_RTOL = 1e-11
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
    stated tolerances; the discrete outcomes (steps, counts, default sets) exactly.
    With the exact solver, DebtRank and the fixed point also equal the PETSc
    solver's results within the tolerances, and the one-rank exact results bit
    for bit."""
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
    out += _exact_debtrank(d, sheets, ref, ref_sheets, want, got)
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
    out += _exact_clearing(d, sheets, ref, ref_sheets, en, results[1])
    d.halo.destroy()
    ref.halo.destroy()
    return out


def _exact_debtrank(d, sheets, ref, ref_sheets, want, petsc):
    """DebtRank with solver="exact" against the scipy reference ``want`` and the PETSc
    solver's result ``petsc`` (tolerances), and the one-rank exact run (bit for bit),
    also after an update of the balance sheets."""
    from tokensim_hpc.risk import DebtRank

    out = []
    mine = slice(d.offset, d.offset + d.n_owned)
    with DebtRank(d, sheets.liability, sheets.equity, sheets.value, solver="exact") as dr:
        got = dr.run(SHOCKED)
        dr.update(equity=0.5 * sheets.equity)
        halved = dr.run(SHOCKED)
    with DebtRank(ref, ref_sheets.liability, ref_sheets.equity, ref_sheets.value,
                  solver="exact") as dr:
        one = dr.run(SHOCKED)
        dr.update(equity=0.5 * ref_sheets.equity)
        one_halved = dr.run(SHOCKED)
    for key in ("debtrank", "total_loss"):
        if abs(getattr(got, key) - want[key]) > DEBTRANK_TOL:
            out.append(f"exact {key} {getattr(got, key)} != {want[key]}")
        if abs(getattr(got, key) - getattr(petsc, key)) > DEBTRANK_TOL:
            out.append(f"exact {key} {getattr(got, key)} != PETSc's {getattr(petsc, key)}")
    if not _close(got.h, want["h"][mine], DEBTRANK_TOL):
        out.append(f"exact h differs by {np.abs(got.h - want['h'][mine]).max()}")
    if not _close(got.h, petsc.h, DEBTRANK_TOL):
        out.append(f"exact h differs from PETSc's by {np.abs(got.h - petsc.h).max()}")
    for key in ("steps", "n_distressed", "n_defaulted"):
        if getattr(got, key) != want[key]:
            out.append(f"exact {key} {getattr(got, key)} != {want[key]}")
    for a, b, what in ((got, one, "exact"), (halved, one_halved, "exact after the update")):
        if not (_same_bits(a.h, b.h[mine]) and np.array_equal(a.state, b.state[mine])):
            out.append(f"{what}: h or states not bit-identical with one rank")
        same = [getattr(a, k) == getattr(b, k) for k in ("debtrank", "total_loss",
                                                        "initial_loss", "steps",
                                                        "n_distressed", "n_defaulted")]
        if not all(same):
            out.append(f"{what}: {a.debtrank!r} {a.steps} != one rank's {b.debtrank!r} "
                       f"{b.steps}")
    if not halved.debtrank > got.debtrank:
        out.append("halving the equity did not raise DebtRank")
    return out


def _exact_clearing(d, sheets, ref, ref_sheets, en, petsc):
    """The fixed point with solver="exact" (its default method) against the scipy
    reference ``en`` and the PETSc fixed point ``petsc`` (tolerances), and the
    one-rank exact run (bit for bit). New liabilities given to ``update`` (the
    first edge of every even agent doubled) give what a new Clearing gives."""
    from tokensim_hpc.risk import Clearing, clearing_vector

    out = []
    mine = slice(d.offset, d.offset + d.n_owned)
    scale = en["obligations"].max()
    with Clearing(d, sheets.liability, solver="exact") as clearing:
        got = clearing.solve(sheets.external, tol=1e-13)
        changed = sheets.liability.copy()
        first = d.indptr[:-1][(d.gid % 2 == 0) & (np.diff(d.indptr) > 0)]
        changed[first] *= 2.0
        clearing.update(changed)
        updated = clearing.solve(sheets.external, tol=1e-13)
    fresh = clearing_vector(d, changed, sheets.external, tol=1e-13, solver="exact")
    if not (_same_bits(updated.payments, fresh.payments) and updated.shortfall > got.shortfall
            and (updated.iterations, updated.shortfall) == (fresh.iterations, fresh.shortfall)):
        out.append(f"exact clearing after update: {updated.shortfall!r} != a new one's "
                   f"{fresh.shortfall!r}")
    one = clearing_vector(ref, ref_sheets.liability, ref_sheets.external, tol=1e-13,
                          solver="exact")
    if got.method != "fixed_point":
        out.append(f"exact clearing ran {got.method}")
    for want, what, tol in ((en["payments"][mine], "the reference", CLEARING_RTOL),
                            (petsc.payments, "PETSc", FIXED_POINTS_RTOL)):
        if not _close(got.payments, want, tol * scale):
            out.append(f"exact payments differ from {what} by "
                       f"{np.abs(got.payments - want).max()}")
    for want, what, tol in ((en["shortfall"], "the reference", CLEARING_RTOL),
                            (petsc.shortfall, "PETSc", FIXED_POINTS_RTOL)):
        if abs(got.shortfall - want) > tol * en["shortfall"]:
            out.append(f"exact shortfall {got.shortfall} != {what}'s {want}")
    if not np.array_equal(got.defaulted, en["defaulted"][mine]):
        out.append("exact: default sets differ")
    if not got.residual < 1e-11 * scale:
        out.append(f"exact: residual {got.residual}")
    if not (_same_bits(got.payments, one.payments[mine])
            and _same_bits(got.obligations, one.obligations[mine])):
        out.append("exact payments or pbar not bit-identical with one rank")
    same = [getattr(got, k) == getattr(one, k) for k in ("shortfall", "total_obligations",
                                                        "n_defaulted", "iterations",
                                                        "residual")]
    if not all(same):
        out.append(f"exact clearing: {got.shortfall!r} {got.iterations} {got.residual!r} != "
                   f"one rank's {one.shortfall!r} {one.iterations} {one.residual!r}")
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


# ----------------------------------------------------------------------------- exact transpose

# ExactTranspose against scipy's W^T x: the same terms added in another order, so
# within 1e-13 of sum_e |w_e x_i| per agent (sums of at most a few dozen terms;
# 3e-16 of it seen); against one rank bit for bit. The network has 16 edges per
# agent and 30 % of them rewired, so in-degrees vary (up to about 30).
TRANSPOSE_RTOL = 1e-13
WIDE_SETS = ["agents.n=3000", "network.k=16", "network.p=0.3"]


def _keyed_weights(d, salt):
    """Weights >= 0 keyed by (source id, place in the row), a quarter of them 0."""
    from tokensim_hpc.risk import balance_sheets

    w = balance_sheets(d, 7).liability
    source = np.repeat(d.gid, np.diff(d.indptr))
    slot = np.arange(int(d.indptr[-1])) - np.repeat(d.indptr[:-1], np.diff(d.indptr))
    w[(source * 31 + slot * 17 + salt) % 4 == 0] = 0.0
    return w


def _keyed_x(gid):
    """x of agents by id: signed, some 0."""
    x = 3.0 * np.cos(0.7 * gid.astype(np.float64))
    x[gid % 5 == 0] = 0.0
    return x


def _transpose_failures(what, d, ref, got, one, w_ref, x_ref):
    """``got`` (this rank's) against scipy (tolerance) and ``one`` (one rank's, bits)."""
    mine = slice(d.offset, d.offset + d.n_owned)
    W = global_matrix(ref, w_ref)
    want = W.T @ x_ref
    bound = abs(W).T @ np.abs(x_ref)
    out = []
    if not np.all(np.abs(got - want[mine]) <= TRANSPOSE_RTOL * bound[mine]):
        out.append(f"{what}: differs from scipy's W^T x by {np.abs(got - want[mine]).max()}")
    if not _same_bits(got, one[mine]):
        out.append(f"{what}: not bit-identical with one rank")
    return out


def check_exact_transpose(comm):
    """ExactTranspose: W^T x by hand (repeated and self edges, a zero weight, ranks
    without agents), and on a random network with a quarter of the weights 0 and
    signed x: scipy's W^T x within TRANSPOSE_RTOL, one rank's bit for bit, with and
    without the zero edges; new weights in place, a new zero pattern and new edges
    (rebuild_halo) handled; bad weights and x refused."""
    from mpi4py import MPI

    from tokensim_hpc.engine import build_domain
    from tokensim_hpc.risk import ExactTranspose
    from tokensim_hpc.scenario import resolve
    from tokensim_hpc.timing import Timers

    out = []
    # By hand: 0->1 twice, 1->1, 2->0, 3->2 twice, 3->0, 2->3 with weight 0.
    source, target = [0, 0, 1, 2, 3, 3, 3, 2], [1, 1, 1, 0, 2, 2, 0, 3]
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 0.0])
    dense = np.zeros((4, 4))
    np.add.at(dense, (source, target), values)
    x_all = np.array([1.0, -2.0, 3.0, -5.0])
    d, edges = domain_from_edges(comm, 4, source, target)
    product = ExactTranspose(d, values[edges])
    if not _same_bits(product.mult_transpose(x_all[d.gid]), (dense.T @ x_all)[d.gid]):
        out.append(f"by hand: {product.mult_transpose(x_all[d.gid])}")
    if comm.allreduce(product.n_entries) != 7:
        out.append(f"by hand: {comm.allreduce(product.n_entries)} edges take part, not 7")
    bad = _refusal(lambda: ExactTranspose(d, np.where(edges == 4, -1.0, values[edges])))
    if "weight must be finite and >= 0: an edge of agent 3 has -1.0" not in bad:
        out.append(f"negative weight: {bad}")
    try:
        product.mult_transpose(np.ones(d.n_owned + 1))
        out.append("x of the wrong length accepted")
    except ValueError:
        pass
    d.halo.destroy()
    # Three agents (on 4 ranks one rank has none): 0->1 (1/2), 1->2 (1/4), 2->0 (0).
    d, edges = domain_from_edges(comm, 3, [0, 1, 2], [1, 2, 0])
    y = ExactTranspose(d, np.array([0.5, 0.25, 0.0])[edges]).mult_transpose(
        np.array([4.0, 8.0, 16.0])[d.gid])
    if not _same_bits(y, np.array([0.0, 2.0, 2.0])[d.gid]):
        out.append(f"3 agents: {y}")
    d.halo.destroy()

    # A random network, and the same on one rank.
    sc = resolve("b1", WIDE_SETS)
    d = build_domain(comm, sc, Timers())
    ref = build_domain(MPI.COMM_SELF, sc, Timers())
    mine = slice(d.offset, d.offset + d.n_owned)
    if not np.array_equal(ref.gid[mine], d.gid):
        out.append("the network is not the same as on one rank")
    w, w_ref = _keyed_weights(d, 0), _keyed_weights(ref, 0)
    x, x_ref = _keyed_x(d.gid), _keyed_x(ref.gid)
    if not 0.2 < np.mean(w_ref == 0) < 0.3:
        out.append(f"zero weights: {np.mean(w_ref == 0)}")
    for skip in (True, False):
        got = ExactTranspose(d, w, skip_zeros=skip).mult_transpose(x)
        one = ExactTranspose(ref, w_ref, skip_zeros=skip).mult_transpose(x_ref)
        out += _transpose_failures(f"skip_zeros={skip}", d, ref, got, one, w_ref, x_ref)
    product = ExactTranspose(d, w)
    one = ExactTranspose(ref, w_ref)
    if comm.allreduce(product.n_entries) != np.count_nonzero(w_ref):
        out.append("not only the nonzero edges take part")
    # New values, the same zero pattern: updated in place.
    route = product._route
    rebuilt = [product.update(1.5 * w), one.update(1.5 * w_ref)]
    if rebuilt != [False, False] or product._route is not route:
        out.append(f"new values with the same pattern rebuilt the route: {rebuilt}")
    out += _transpose_failures("new values", d, ref, product.mult_transpose(x),
                               one.mult_transpose(x_ref), 1.5 * w_ref, x_ref)
    # Other weights on the same edges, set up like this one: its route and order are
    # shared, its own weights used, and it is left as it was.
    w2, w2_ref = _keyed_weights(d, 1), _keyed_weights(ref, 1)
    before = product.mult_transpose(x)
    twin = ExactTranspose(d, 0.5 * w, like=product)
    if twin._route is not product._route or twin._index is not product._index:
        out.append("like=: the set-up of the same edges was made again")
    out += _transpose_failures("like, same edges", d, ref, twin.mult_transpose(x),
                               ExactTranspose(ref, 0.5 * w_ref).mult_transpose(x_ref),
                               0.5 * w_ref, x_ref)
    if not _same_bits(product.mult_transpose(x), before):
        out.append("like=: the original's products changed")
    # ... and made again when other edges take part (a new zero pattern).
    other = ExactTranspose(d, w2, like=product)
    if other._route is product._route:
        out.append("like=: another zero pattern reused the route")
    out += _transpose_failures("like, new zeros", d, ref, other.mult_transpose(x),
                               ExactTranspose(ref, w2_ref).mult_transpose(x_ref), w2_ref,
                               x_ref)
    # Another zero pattern: the route and the order are made again.
    rebuilt = [product.update(w2), one.update(w2_ref)]
    if rebuilt != [True, True]:
        out.append(f"a new zero pattern was not rebuilt: {rebuilt}")
    out += _transpose_failures("new zeros", d, ref, product.mult_transpose(x),
                               one.mult_transpose(x_ref), w2_ref, x_ref)
    # New edges: every agent's first edge now points at agent (gid + 1) mod N.
    for dom in (d, ref):
        targets = dom.edge_targets().copy()
        targets[dom.indptr[:-1]] = (dom.gid + 1) % dom.n_total
        dom.rebuild_halo(targets)
    rebuilt = [product.update(w2), one.update(w2_ref)]
    if rebuilt != [True, True]:
        out.append(f"new edges were not rebuilt: {rebuilt}")
    out += _transpose_failures("new edges", d, ref, product.mult_transpose(x),
                               one.mult_transpose(x_ref), w2_ref, x_ref)
    d.halo.destroy()
    ref.halo.destroy()
    return out


# Every check above, run on one rank (test_risk.py) and on several (test_risk_mpi.py).
CHECKS = [check_clearing_textbook, check_debtrank_chain, check_debtrank_star,
          check_missing_shock_refused, check_duplicates_and_self_edges,
          check_random_network, check_exposure_matrix, check_exact_transpose]
