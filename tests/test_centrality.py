"""Centralities (in-strength, PageRank, Katz) and the most central agents.

Each ``check_*`` runs on any number of ranks: every rank calls it, it enters
every collective before anything is compared, and it returns this rank's
failures (empty when all holds). ``test_on_one_rank`` runs them serially,
``test_on_several_ranks`` under mpirun (``--with-mpi``, 2, 3 and 4 ranks),
where the verdict is reduced over the ranks. Small graphs are worked by
hand below; a random network of 3000 agents is compared with serial
scipy.sparse references computed in the same test on one rank.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from risk_cases import domain_from_edges

from tokensim_hpc.errors import RiskInputError, SolverError
from tokensim_hpc.linalg import initialize, live_objects
from tokensim_hpc.parallel.mpi import world

pytestmark = pytest.mark.timeout(180)

# Tolerances of the comparisons with references. In-strength: bit-identical on
# any rank count (the same terms added in the same order), and within 1e-14
# relative of scipy's W^T 1 (sums of a few dozen terms at most, added in
# another order; 1.5e-16 seen). PageRank: GMRES to a relative residual of
# 1e-12 on (I - alpha P^T) y = 1, whose condition number is at most
# (1 + alpha) / (1 - alpha) = 12.3 in the 1-norm: each score within 1e-10 of
# the largest (3e-12 seen on 1 to 4 ranks), and the residual of the defining
# equation below 1e-11 / N. Katz with a = 0.9 / rho(W): within 1e-10 of the
# largest score (3e-12 seen). Hand-worked graphs: 1e-14 absolute.
STRENGTH_RTOL = 1e-14
PAGERANK_RTOL = 1e-10
KATZ_RTOL = 1e-10
HAND_TOL = 1e-14


def _close(got, want, tol):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= tol))


# ----------------------------------------------------------------------------- by hand

def check_in_strength_by_hand(comm):
    """0->1 (1), 0->2 (2), 1->2 (4), 2->0 (8), 3->2 twice (16 and 32), 3->3 (64),
    4 has no edge. In-strength: s0 = 8, s1 = 1, s2 = 2 + 4 + 16 + 32 = 54,
    s3 = 64 (its self edge), s4 = 0. Integers: exact on every rank count."""
    from tokensim_hpc.risk import in_strength

    source, target = [0, 0, 1, 2, 3, 3, 3], [1, 2, 2, 0, 2, 2, 3]
    w = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    d, edges = domain_from_edges(comm, 5, source, target)
    out = []
    s = in_strength(d, w[edges])
    want = np.array([8.0, 1.0, 54.0, 64.0, 0.0])[d.gid]
    if not np.array_equal(s, want):
        out.append(f"in-strength {s} != {want}")
    d.halo.destroy()
    return out


def check_pagerank_by_hand(comm):
    """Four graphs whose PageRank is worked out by hand.

    Directed 3-cycle 0->1->2->0, any weights: every agent has the same
    position, x = (1/3, 1/3, 1/3).

    Weighted, alpha = 1/2: 0->1 (weight 1), 0->2 (weight 3), 1->0 (2), 2->0 (5).
    P = [[0, 1/4, 3/4], [1, 0, 0], [1, 0, 0]], no dangling agent:
    x0 = (1 - a)/3 + a (x1 + x2) = 1/6 + (1 - x0)/2  =>  x0 = 4/9,
    x1 = 1/6 + x0/2 * 1/4 = 2/9, x2 = 1/6 + x0/2 * 3/4 = 1/3.

    Star: leaves 1..4 point to the centre 0, which has no out-edge (dangling,
    its mass spread over all 5 agents). With N = 5, m = 4 leaves:
    x_leaf = (1 - a)/N + a x_c / N and x_c + m x_leaf = 1 give
    x_leaf = 1 / (1 + m + a m), x_c = (1 + a m) / (1 + m + a m): for a = 1/2,
    (3/7, 1/7, 1/7, 1/7, 1/7); for a = 0.85, (4.4/8.4, 1/8.4, ...).

    No edges at all (every agent dangling): x = 1/N.
    """
    from tokensim_hpc.risk import pagerank

    out = []
    d, edges = domain_from_edges(comm, 3, [0, 1, 2], [1, 2, 0])
    r = pagerank(d, np.array([1.0, 5.0, 0.25])[edges])
    if not _close(r.score, np.full(d.n_owned, 1 / 3), HAND_TOL) or r.residual > HAND_TOL:
        out.append(f"3-cycle: {r.score}, residual {r.residual}")
    d.halo.destroy()

    d, edges = domain_from_edges(comm, 3, [0, 0, 1, 2], [1, 2, 0, 0])
    r = pagerank(d, np.array([1.0, 3.0, 2.0, 5.0])[edges], alpha=0.5)
    if not _close(r.score, np.array([4 / 9, 2 / 9, 1 / 3])[d.gid], HAND_TOL):
        out.append(f"weighted: {r.score}")
    d.halo.destroy()

    d, edges = domain_from_edges(comm, 5, [1, 2, 3, 4], [0, 0, 0, 0])
    for alpha, centre in ((0.5, 3 / 7), (0.85, 4.4 / 8.4)):
        leaf = 1 / (1 + 4 + alpha * 4)
        r = pagerank(d, np.ones(4)[edges], alpha=alpha)
        want = np.array([centre, leaf, leaf, leaf, leaf])[d.gid]
        if not _close(r.score, want, HAND_TOL) or r.residual > HAND_TOL:
            out.append(f"star, alpha {alpha}: {r.score} != {want} (residual {r.residual})")
    d.halo.destroy()

    d, edges = domain_from_edges(comm, 4, [], [])
    r = pagerank(d, np.zeros(0))
    if not _close(r.score, np.full(d.n_owned, 0.25), HAND_TOL):
        out.append(f"no edges: {r.score}")
    d.halo.destroy()
    return out


def check_katz_by_hand(comm):
    """Chain 0->1->2->3 with weights w = (1, 2, 1/2), a = 1/2, b = 2: W is nilpotent
    (rho = 0), x = b (I + a W^T + (a W^T)^2 + (a W^T)^3) 1:
    x0 = b = 2, x1 = b + a w01 x0 = 2 + 1 = 3, x2 = b + a w12 x1 = 2 + 3 = 5,
    x3 = b + a w23 x2 = 2 + 5/4 = 13/4.
    3-cycle with unit weights (rho = 1), a = 1/2, b = 1: x = b / (1 - a) = 2 each."""
    from tokensim_hpc.risk import Centrality

    out = []
    d, edges = domain_from_edges(comm, 4, [0, 1, 2], [1, 2, 3])
    with Centrality(d, np.array([1.0, 2.0, 0.5])[edges]) as c:
        r = c.katz(0.5, b=2.0)
    if not _close(r.score, np.array([2.0, 3.0, 5.0, 13 / 4])[d.gid], HAND_TOL):
        out.append(f"chain: {r.score}")
    d.halo.destroy()
    d, edges = domain_from_edges(comm, 3, [0, 1, 2], [1, 2, 0])
    with Centrality(d, np.ones(3)[edges]) as c:
        r = c.katz(0.5)
    if not _close(r.score, np.full(d.n_owned, 2.0), HAND_TOL) or r.residual > HAND_TOL:
        out.append(f"3-cycle: {r.score} (residual {r.residual})")
    d.halo.destroy()
    return out


def _error(fn):
    """(exception class name, message) of a call expected to fail, or ("", "accepted")."""
    try:
        fn()
    except (RiskInputError, SolverError) as exc:
        return type(exc).__name__, str(exc)
    return "", "accepted"


def _same_everywhere(comm, outcome, kind, text, out, what):
    """Every rank got the same error, of class ``kind``, whose message contains ``text``."""
    outcomes = comm.allgather(outcome)
    if len(set(outcomes)) != 1 or outcome[0] != kind or text not in outcome[1]:
        out.append(f"{what}: {outcomes}")


def check_katz_above_the_bound_refused(comm):
    """3-cycle with unit weights: rho(W) = 1. For a = 3/2 the linear system has the
    solution x = 1 / (1 - a) = -2 (negative: refused, a >= 1 / rho). For a = 1 it
    is singular: the Krylov solve cannot converge. Both fail alike on every rank."""
    from tokensim_hpc.risk import katz

    out = []
    d, edges = domain_from_edges(comm, 3, [0, 1, 2], [1, 2, 0])
    w = np.ones(3)[edges]
    _same_everywhere(comm, _error(lambda: katz(d, 1.5, w)), "RiskInputError",
                     "a = 1.5 is not below 1 / rho(W)", out, "a = 3/2")
    _same_everywhere(comm, _error(lambda: katz(d, 1.0, w)), "SolverError",
                     "Katz with a = 1.0: the linear solve did not converge", out, "a = 1")
    d.halo.destroy()
    return out


def check_top_agents_by_hand(comm):
    """Scores of 10 agents (in id order) 1, 3, 3, 2, 3, 0, -1, 3, 2.5, 0.5: the top 5
    are the four 3s in id order (1, 2, 4, 7), then 2.5 (8); k = 20 > N gives all
    10, largest first, ties by id. With 3 agents on 4 ranks, some rank has none."""
    from tokensim_hpc.risk import top_agents

    out = []
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0, 0.0, -1.0, 3.0, 2.5, 0.5])
    d, _ = domain_from_edges(comm, 10, [], [])
    ids, values = top_agents(d, scores[d.gid], k=5)
    if ids.tolist() != [1, 2, 4, 7, 8] or values.tolist() != [3.0, 3.0, 3.0, 3.0, 2.5]:
        out.append(f"top 5: {ids} {values}")
    ids, values = top_agents(d, scores[d.gid])
    if ids.tolist() != [1, 2, 4, 7, 8, 3, 0, 9, 5, 6] or \
            not np.array_equal(values, scores[ids]):
        out.append(f"top 20 of 10: {ids} {values}")
    gathered = comm.allgather((ids.tolist(), values.tolist()))
    if any(g != gathered[0] for g in gathered):
        out.append("top agents differ between ranks")
    d.halo.destroy()
    d, _ = domain_from_edges(comm, 3, [], [])
    ids, values = top_agents(d, np.array([0.5, 0.5, 0.75])[d.gid], k=2)
    if ids.tolist() != [2, 0] or values.tolist() != [0.75, 0.5]:
        out.append(f"3 agents: {ids} {values}")
    d.halo.destroy()
    return out


def check_bad_inputs_refused(comm):
    """A negative weight, a weight array of the wrong length (on rank 0 only), a NaN
    score, a bad alpha, a bad k: the same error on every rank, naming the agent."""
    from tokensim_hpc.risk import Centrality, in_strength, katz, pagerank, top_agents

    out = []
    d, edges = domain_from_edges(comm, 4, [0, 1, 2, 3], [1, 2, 3, 0])
    w = np.array([1.0, -2.0, 1.0, 1.0])[edges]
    _same_everywhere(comm, _error(lambda: pagerank(d, w)), "RiskInputError",
                     "weight must be finite and >= 0: an edge of agent 1 has -2.0", out,
                     "negative weight")
    short = np.ones(len(edges) + (1 if comm.rank == 0 else 0))
    _same_everywhere(comm, _error(lambda: in_strength(d, short)), "RiskInputError",
                     "weight: one value per local edge", out, "wrong length")
    nan = np.where(d.gid == 2, np.nan, 1.0)
    _same_everywhere(comm, _error(lambda: top_agents(d, nan)), "RiskInputError",
                     "agent 2 has a NaN or infinite score", out, "NaN score")
    _same_everywhere(comm, _error(lambda: top_agents(d, np.ones(d.n_owned), k=0)),
                     "RiskInputError", "k must be a positive integer", out, "k = 0")
    ones = np.ones(len(edges))
    _same_everywhere(comm, _error(lambda: pagerank(d, ones, alpha=1.0)), "RiskInputError",
                     "alpha must be in [0, 1)", out, "alpha = 1")
    _same_everywhere(comm, _error(lambda: katz(d, -0.1, ones)), "RiskInputError",
                     "a must be finite and > 0", out, "a < 0")
    with Centrality(d, ones) as c:  # still usable after a refusal
        if not _close(c.pagerank().score, np.full(d.n_owned, 0.25), HAND_TOL):
            out.append("PageRank after refusals")
    d.halo.destroy()
    return out


# ----------------------------------------------------------------------------- random network

RANDOM_SETS = ["agents.n=3000", "network.k=6", "network.p=0.1"]


def _random_weights(d):
    """Exposures keyed by agent id (the same on any rank count); agents with id % 10 == 3
    get zero weights on all their edges (dangling for PageRank), and the first edge of
    agents with id % 7 == 0 weighs 0."""
    from tokensim_hpc.risk import balance_sheets

    w = balance_sheets(d, 5).liability
    source = np.repeat(d.gid, np.diff(d.indptr))
    w[source % 10 == 3] = 0.0
    w[d.indptr[:-1][(d.gid % 7 == 0) & (np.diff(d.indptr) > 0)]] = 0.0
    return w


def _reference_pagerank(W, alpha):
    """Power iteration on the definition: x <- alpha P^T x + (alpha dangling mass
    + 1 - alpha) / N, from 1/N, until the 1-norm change is below 1e-16 (the error
    left is at most alpha / (1 - alpha) times that)."""
    n = W.shape[0]
    out = np.asarray(W.sum(axis=1)).ravel()
    dangling = out == 0
    PT = (sp.diags(np.divide(1.0, out, out=np.zeros(n), where=out > 0)) @ W).T.tocsr()
    x = np.full(n, 1.0 / n)
    for _ in range(5000):
        new = alpha * (PT @ x) + (alpha * x[dangling].sum() + 1.0 - alpha) / n
        change = np.abs(new - x).sum()
        x = new
        if change < 1e-16:
            break
    return x / math.fsum(x)


def _top(gid, score, k=20):
    order = np.lexsort((gid, -score))[:k]
    return gid[order], score[order]


def check_random_network(comm):
    """In-strength, PageRank and Katz on B1's network of 3000 agents (k = 6, 10 %
    rewired, some dangling agents and zero weights) equal serial scipy references
    within the tolerances above, in-strength bit for bit with one rank; the top 20
    agents of each measure equal the reference's, ids exactly."""
    from mpi4py import MPI

    from tokensim_hpc.engine import build_domain
    from tokensim_hpc.risk import Centrality, in_strength, top_agents
    from tokensim_hpc.scenario import resolve
    from tokensim_hpc.timing import Timers

    out = []
    sc = resolve("b1", RANDOM_SETS)
    d = build_domain(comm, sc, Timers())
    ref = build_domain(MPI.COMM_SELF, sc, Timers())
    mine = slice(d.offset, d.offset + d.n_owned)
    if not np.array_equal(ref.gid[mine], d.gid):
        out.append("the network is not the same as on one rank")
    w, ref_w = _random_weights(d), _random_weights(ref)
    n = ref.n_owned
    W = sp.csr_matrix((ref_w, ref.indices, ref.indptr), shape=(n, n))
    dangling = np.asarray(W.sum(axis=1)).ravel() == 0
    if not 250 < dangling.sum() < 400:
        out.append(f"the random case has {dangling.sum()} dangling agents")

    # In-strength: bit-identical with one rank, close to scipy's.
    strength_one_rank = in_strength(ref, ref_w)
    strength_scipy = W.T @ np.ones(n)
    scale = strength_scipy.max()
    with Centrality(d, w) as cent:
        strength = cent.in_strength()
        pr = cent.pagerank()
        rho = comm.bcast(abs(spla.eigs(W, k=1, which="LM", return_eigenvectors=False,
                                       v0=np.ones(n))[0]))
        a = 0.9 / rho
        kz = cent.katz(a, b=1.0)
        too_big = _error(lambda: cent.katz(1.05 / rho))
    if not np.array_equal(strength, strength_one_rank[mine]):
        out.append("in-strength is not bit-identical with one rank")
    if not _close(strength, strength_scipy[mine], STRENGTH_RTOL * scale):
        out.append(f"in-strength differs from scipy by "
                   f"{np.abs(strength - strength_scipy[mine]).max()}")

    # PageRank against power iteration on the definition.
    pr_ref = _reference_pagerank(W, 0.85)
    if not _close(pr.score, pr_ref[mine], PAGERANK_RTOL * pr_ref.max()):
        out.append(f"PageRank differs by {np.abs(pr.score - pr_ref[mine]).max()} "
                   f"(largest {pr_ref.max()})")
    if not (pr.iterations > 5 and pr.residual < 1e-11 / n):
        out.append(f"PageRank: {pr.iterations} iterations, residual {pr.residual}")

    # Katz against a direct solve.
    kz_ref = spla.spsolve((sp.identity(n) - a * W.T).tocsc(), np.ones(n))
    if not _close(kz.score, kz_ref[mine], KATZ_RTOL * kz_ref.max()):
        out.append(f"Katz differs by {np.abs(kz.score - kz_ref[mine]).max()} "
                   f"(largest {kz_ref.max()})")
    if not (kz_ref.min() >= 1.0 and kz_ref.max() > 3.0):
        out.append(f"the Katz case is degenerate: scores {kz_ref.min()}..{kz_ref.max()}")
    _same_everywhere(comm, too_big, "RiskInputError", "is not below 1 / rho(W)", out,
                     "Katz at a = 1.05 / rho")

    # Top 20: in-strength exactly as on one rank (ties included); PageRank and Katz as
    # the references, once the references' top 21 are further apart than the tolerance.
    got = top_agents(d, strength)
    want = _top(ref.gid, strength_one_rank)
    if not (np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])):
        out.append(f"top in-strength {got} != {want}")
    for name, result, reference, tol in (("PageRank", pr, pr_ref, PAGERANK_RTOL),
                                         ("Katz", kz, kz_ref, KATZ_RTOL)):
        got = top_agents(d, result.score)
        want = _top(ref.gid, reference, 21)
        if np.min(-np.diff(want[1])) <= 2 * tol * reference.max():
            out.append(f"{name}: the reference's top 21 have near ties")
        if not (np.array_equal(got[0], want[0][:20])
                and _close(got[1], want[1][:20], tol * reference.max())):
            out.append(f"top {name} {got[0]} != {want[0][:20]}")
    d.halo.destroy()
    ref.halo.destroy()
    return out


def check_in_strength_of_long_rows(comm):
    """In-strength on a network of 16 edges per agent, 30 % rewired (in-degrees up to
    30), weighted by liabilities: bit for bit the one-rank result, and within
    STRENGTH_RTOL of scipy's W^T 1. (Summing with a padding value after the last
    agent's terms broke the first on 2 and 4 ranks: the agent that ends the first
    half of the Hilbert order has 16 in-edges, whose sum the padding regrouped.)"""
    from mpi4py import MPI

    from tokensim_hpc.engine import build_domain
    from tokensim_hpc.risk import Centrality, balance_sheets
    from tokensim_hpc.scenario import resolve
    from tokensim_hpc.timing import Timers

    out = []
    sc = resolve("b1", ["agents.n=3000", "network.k=16", "network.p=0.3"])
    d = build_domain(comm, sc, Timers())
    ref = build_domain(MPI.COMM_SELF, sc, Timers())
    mine = slice(d.offset, d.offset + d.n_owned)
    with Centrality(d, balance_sheets(d, 5).liability) as c:
        strength = c.in_strength()
    ref_w = balance_sheets(ref, 5).liability
    with Centrality(ref, ref_w) as c:
        one = c.in_strength()
    n = ref.n_owned
    W = sp.csr_matrix((ref_w, ref.indices, ref.indptr), shape=(n, n), copy=True)
    want = W.T @ np.ones(n)
    if not np.array_equal(strength.view(np.uint64), one[mine].view(np.uint64)):
        out.append(f"in-strength not bit-identical with one rank at agents "
                   f"{d.gid[strength != one[mine]].tolist()}")
    if not _close(strength, want[mine], STRENGTH_RTOL * want.max()):
        out.append(f"in-strength differs from scipy by {np.abs(strength - want[mine]).max()}")
    if np.diff(ref.indptr).max() != 16 or np.bincount(ref.indices).max() < 25:
        out.append("the network does not have the long rows it should")
    d.halo.destroy()
    ref.halo.destroy()
    return out


CHECKS = [check_in_strength_by_hand, check_pagerank_by_hand, check_katz_by_hand,
          check_katz_above_the_bound_refused, check_top_agents_by_hand,
          check_bad_inputs_refused, check_random_network, check_in_strength_of_long_rows]


@pytest.fixture(autouse=True, scope="module")
def petsc_on_world():
    """PETSc started on the world communicator, before any one-rank reference."""
    initialize(world())


def all_ranks(ok: bool) -> bool:
    """True only if ``ok`` holds on every rank (collective)."""
    from mpi4py import MPI

    return bool(world().allreduce(bool(ok), op=MPI.LAND))


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__[len("check_"):])
def test_on_one_rank(check):
    assert check(world()) == []
    assert live_objects() == []


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__[len("check_"):])
def test_on_several_ranks(check):
    failures = check(world())
    assert all_ranks(not failures and not live_objects()), (failures, live_objects())


def test_halo_sends_records_to_the_owners():
    """send_to_owners: records addressed to ghost slots arrive at the owned slots of
    their agents (one rank: no ghosts, nothing moves)."""
    d, _ = domain_from_edges(world(), 3, [0, 1], [1, 2])
    owned, values = d.halo.send_to_owners(np.zeros(0, dtype=np.int64), np.zeros(0))
    assert owned.size == 0 and values.size == 0
    d.halo.destroy()


@pytest.mark.mpi(min_size=2)
def test_halo_sends_records_to_the_owners_on_several_ranks():
    """Every edge to a ghost sends (source id, target id); each owner receives
    exactly the edges that point to its agents from other ranks."""
    comm = world()
    n = 40
    source = np.repeat(np.arange(n), 3)
    target = (source * 7 + np.tile([1, 5, 17], n)) % n
    d, edges = domain_from_edges(comm, n, source, target)
    ghost = d.indices >= d.n_owned
    src_gid = np.repeat(d.gid, np.diff(d.indptr))
    tgt_gid = np.concatenate((d.gid, d.halo.ghost_gid))[d.indices]
    owned, got_src, got_tgt = d.halo.send_to_owners(d.indices[ghost], src_gid[ghost],
                                                    tgt_gid[ghost])
    mine = (target >= d.gid.min(initial=n)) & (target <= d.gid.max(initial=-1))
    remote = mine & ((source < d.gid.min(initial=n)) | (source > d.gid.max(initial=-1)))
    want = sorted(zip(source[remote].tolist(), target[remote].tolist(), strict=True))
    got = sorted(zip(got_src.tolist(), got_tgt.tolist(), strict=True))
    d.halo.destroy()
    assert all_ranks(got == want and np.array_equal(d.gid[owned], got_tgt)), (got, want)


@pytest.mark.mpi(min_size=2)
def test_owner_route_is_reusable_and_in_the_order_of_send_to_owners():
    """route_to_owners: the route of send_to_owners, kept. The same records give the
    same owned slots and order (twice over), columns sent along the route later
    (in the records' order, or already in sending order) arrive as send_to_owners
    delivers them, and a column of the wrong length is refused."""
    comm = world()
    n = 40
    source = np.repeat(np.arange(n), 3)
    target = (source * 7 + np.tile([1, 5, 17], n)) % n
    d, edges = domain_from_edges(comm, n, source, target)
    ghost = np.flatnonzero(d.indices >= d.n_owned)
    slots = d.indices[ghost][::-1].copy()  # not in slot order: the route sorts them
    src_gid = np.repeat(d.gid, np.diff(d.indptr))[ghost][::-1]
    value = np.sin(src_gid * 1.0 + slots)
    owned, got_src, got_value = d.halo.send_to_owners(slots, src_gid, value)
    route = d.halo.route_to_owners(slots)
    again = d.halo.route_to_owners(slots)
    (by_route,) = route.send(value)
    in_order, src_in_order = route.send(value[route.order], src_gid[route.order],
                                        in_route_order=True)
    try:
        route.send(np.zeros(route.n_send + 1))
        refused = False
    except ValueError:
        refused = True
    ok = (np.array_equal(route.owned, owned) and np.array_equal(again.owned, owned)
          and np.array_equal(route.order, again.order)
          and np.array_equal(by_route, got_value) and np.array_equal(in_order, got_value)
          and np.array_equal(src_in_order, got_src) and route.n_recv == owned.shape[0]
          and route.n_send == slots.shape[0] and refused)
    any_moved = comm.allreduce(route.n_send) > 0
    d.halo.destroy()
    assert all_ranks(ok and any_moved), (route.owned, owned)
