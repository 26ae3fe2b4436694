"""Risk measures on several ranks (run under mpirun with --with-mpi at 2, 3 and 4 ranks).

The checks of ``risk_cases`` run on every rank; each enters every collective
before anything is asserted and the verdict is reduced over the ranks, so a
failure on one rank fails all of them instead of leaving the others waiting.
Textbook networks have fewer agents than 4 ranks, so ranks without agents
take part too. Random networks are compared with a serial reference built
on one rank inside the same test (the tolerances are in ``risk_cases``).
"""

import pytest
import risk_cases as cases

from tokensim_hpc.errors import RiskInputError
from tokensim_hpc.linalg import initialize, live_objects
from tokensim_hpc.parallel.mpi import world

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]


def all_ranks(ok: bool) -> bool:
    """True only if ``ok`` holds on every rank (collective)."""
    from mpi4py import MPI

    return bool(world().allreduce(bool(ok), op=MPI.LAND))


@pytest.fixture(autouse=True, scope="module")
def petsc_on_world():
    """PETSc started on the world communicator, before any one-rank reference."""
    initialize(world())


@pytest.mark.parametrize("check", cases.CHECKS, ids=lambda f: f.__name__[len("check_"):])
def test_on_several_ranks(check):
    failures = check(world())
    assert all_ranks(not failures and not live_objects()), (failures, live_objects())


def test_every_rank_refuses_the_same_missing_id():
    from tokensim_hpc.risk import debtrank

    comm = world()
    d, edges = cases.domain_from_edges(comm, 4, [0, 1, 2], [1, 2, 3])
    try:
        debtrank(d, [1.0] * len(edges), [1.0] * d.n_owned, [1.0] * d.n_owned, [3, 9])
        message = "accepted"
    except RiskInputError as exc:
        message = str(exc)
    d.halo.destroy()
    messages = comm.allgather(message)
    assert all_ranks(len(set(messages)) == 1 and "no agent has id 9" in message), messages
