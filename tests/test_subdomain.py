"""Sub-domains over a part of the network (Domain.subdomain) and id lookups
(Domain.find_owned), serially and under mpirun at 2, 3, 4 ranks."""

import numpy as np
import pytest

from tokensim_hpc.engine import build_domain
from tokensim_hpc.parallel.mpi import world
from tokensim_hpc.scenario import resolve
from tokensim_hpc.timing import Timers

N = 2000


def _lookup_ok(domain, ids):
    local = domain.find_owned(ids)
    owned = np.isin(ids, domain.gid)
    return bool(np.array_equal(local >= 0, owned)
                and np.array_equal(domain.gid[local[owned]], ids[owned]))


def _check(part="every 97th edge"):
    """Every rank checks its part; the verdicts are combined (no rank left waiting).
    ``part``: "every 97th edge" of every rank, or "rank 0's only" (the other ranks
    give no edge: their sub-domains hold only the agents rank 0's edges point at)."""
    comm = world()
    sc = resolve("b1", [f"agents.n={N}", "network.p=0.05"])
    domain = build_domain(comm, sc, Timers())
    ids = np.random.default_rng(comm.rank).integers(-3, N + 3, size=500)
    edges = np.arange(0, int(domain.indptr[-1]), 97, dtype=np.int64)  # a sparse part
    if part == "rank 0's only" and comm.rank != 0:
        edges = edges[:0]
    rows = np.searchsorted(domain.indptr, edges, side="right") - 1
    sub, agents = domain.subdomain(edges)
    # The sub-domain's own halo delivers its ghosts' ids.
    column = np.zeros(sub.n_owned + sub.halo.n_ghost)
    column[:sub.n_owned] = sub.gid
    sub.halo.exchange(column)
    sub_rows = np.repeat(np.arange(sub.n_owned), np.diff(sub.indptr))
    checks = {
        "lookup": _lookup_ok(domain, ids),
        "agents ascending": bool(np.all(np.diff(agents) > 0)),
        "ids": np.array_equal(sub.gid, domain.gid[agents]),
        "rows kept": set(rows.tolist()) <= set(agents.tolist()),
        # Every kept edge, with its target, row by row in the same order.
        "targets": np.array_equal(sub.edge_targets(), domain.edge_targets()[edges]),
        "row order": np.array_equal(agents[sub_rows], rows),
        "sub lookup": _lookup_ok(sub, ids),
        "parent ids in sub": _lookup_ok(sub, domain.gid),  # only the sub's are found
        "sub halo": np.array_equal(column[sub.n_owned:], sub.halo.ghost_gid),
        "interior and boundary rows": all(
            np.array_equal(a, b) for a, b in zip((sub.interior_rows, sub.boundary_rows),
                                                 sub.halo.split_rows(sub.indptr), strict=True)),
    }
    # A second sub-domain takes over the parent's map of places: the first one's lookups
    # search instead, with the same answers.
    other, _ = domain.subdomain(np.arange(1, int(domain.indptr[-1]), 13, dtype=np.int64))
    checks["sub lookup, newer sub-domain"] = _lookup_ok(sub, ids) and _lookup_ok(sub, domain.gid)
    checks["newer sub lookup"] = _lookup_ok(other, ids) and _lookup_ok(other, domain.gid)
    other.halo.destroy()
    sub.halo.destroy()
    domain.halo.destroy()
    failed = sorted({name for part in comm.allgather(checks) for name, ok in part.items()
                     if not ok})
    assert not failed, failed


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("part", ["every 97th edge", "rank 0's only"])
def test_subdomain_across_ranks(part):
    _check(part)


def test_subdomain_serial():
    _check()
