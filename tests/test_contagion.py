"""Contagion probabilities P(Default_i | Stressed) (paper 6.1): by hand, against a
numpy/scipy reference on a random network at 1-4 ranks (bit-identical), and a stressed
agent that does not exist refused alike on every rank."""

import math

import numpy as np
import pytest
from risk_cases import RANDOM_SETS, domain_from_edges

from tokensim_hpc.errors import RiskInputError
from tokensim_hpc.parallel.mpi import world

pytestmark = pytest.mark.timeout(180)


def _phi_tail(x):
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def check_by_hand(comm):
    """Edges (what the source owes the target): 0->1 (2), 2->1 (3), 0->3 (5), 3->0 (7).
    Stressed {0, 2}: agent 1 is exposed to 2 + 3 = 5, agent 3 to 5, agents 0 and 2 to
    nothing stressed (0 is owed by 3, which is not stressed). theta = 4 and sigma = 2
    for all: P_1 = P_3 = 1 - Phi(-0.5), P_0 = P_2 = 1 - Phi(2)."""
    from tokensim_hpc.risk.contagion import contagion_probabilities

    d, edges = domain_from_edges(comm, 4, [0, 2, 0, 3], [1, 1, 3, 0])
    liability = np.array([2.0, 3.0, 5.0, 7.0])[edges]
    r = contagion_probabilities(d, liability, np.full(d.n_owned, 4.0), np.full(d.n_owned, 2.0),
                                [0, 2])
    want_exposure = np.array([0.0, 5.0, 0.0, 5.0])[d.gid]
    want = np.array([_phi_tail(2.0), _phi_tail(-0.5), _phi_tail(2.0), _phi_tail(-0.5)])
    out = []
    if not np.array_equal(r.exposure, want_exposure):
        out.append(f"exposure {r.exposure} != {want_exposure}")
    if not np.allclose(r.probability, want[d.gid], rtol=1e-15, atol=0):
        out.append(f"probability {r.probability} != {want[d.gid]}")
    if abs(r.expected_defaults - want.sum()) > 1e-15:
        out.append(f"expected defaults {r.expected_defaults} != {want.sum()}")
    return out


def check_random_network(comm):
    """2000 agents: the probabilities equal a scipy reference (within 1e-15 relative:
    the same terms in another order), and are bit-identical to one rank's."""
    from mpi4py import MPI
    from scipy.sparse import coo_matrix
    from scipy.special import erfc

    from tokensim_hpc.engine import build_domain
    from tokensim_hpc.risk import balance_sheets
    from tokensim_hpc.risk.contagion import contagion_probabilities
    from tokensim_hpc.scenario import resolve
    from tokensim_hpc.timing import Timers

    sc = resolve("b1", RANDOM_SETS)
    stressed = [5, 77, 1234, 1999]
    results = []
    for c in (comm, MPI.COMM_SELF):
        d = build_domain(c, sc, Timers())
        sheets = balance_sheets(d, 11)
        sigma = 0.5 + (d.gid % 7) * 0.25
        r = contagion_probabilities(d, sheets.liability, sheets.equity, sigma, stressed)
        src = np.repeat(d.gid, np.diff(d.indptr))
        results.append((d.gid, r, src, d.edge_targets(), sheets, sigma))
        d.halo.destroy()
    out = []
    (gid, r, *_), (gid1, r1, src, dst, sheets, sigma) = results
    order = np.argsort(gid1)
    mine = order[np.searchsorted(gid1[order], gid)]
    if not np.array_equal(r.probability, r1.probability[mine]):
        out.append("probabilities differ from one rank's")
    if r.expected_defaults != r1.expected_defaults:
        out.append(f"expected defaults {r.expected_defaults} != {r1.expected_defaults}")
    n = gid1.size
    stressed_edge = np.isin(src, stressed)
    w = coo_matrix((sheets.liability[stressed_edge], (src[stressed_edge], dst[stressed_edge])),
                   shape=(n, n)).tocsr()
    exposure = np.asarray(w.sum(axis=0)).ravel()[gid1]
    want = 0.5 * erfc((sheets.equity - exposure) / (sigma * np.sqrt(2.0)))
    if not np.allclose(r1.probability, want, rtol=1e-15, atol=1e-300):
        out.append("probabilities differ from the scipy reference")
    if not (exposure > 0).sum() >= 10:
        out.append("too few exposed agents for a meaningful test")
    return out


def check_missing_stressed_agent(comm):
    from tokensim_hpc.risk.contagion import contagion_probabilities

    d, edges = domain_from_edges(comm, 4, [0, 2], [1, 1])
    try:
        contagion_probabilities(d, np.ones(edges.size), np.ones(d.n_owned),
                                np.ones(d.n_owned), [1, 9])
    except RiskInputError as exc:
        return [] if "no agent has id 9" in str(exc) else [f"wrong message: {exc}"]
    return ["a stressed agent that does not exist was accepted"]


CHECKS = [check_by_hand, check_random_network, check_missing_stressed_agent]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_on_one_rank(check):
    from mpi4py import MPI

    assert check(MPI.COMM_SELF) == []


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_on_several_ranks(check):
    comm = world()
    failures = check(comm)
    assert comm.allreduce(len(failures)) == 0, failures
