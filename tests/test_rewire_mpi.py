"""The daily rewiring's halo rebuild, under mpirun: the plan built from form_edges'
hints (owned slots and known ghosts taken as given) equals the plan built by
searching every edge's target by id."""

import numpy as np
import pytest

from tokensim_hpc.engine import Simulation
from tokensim_hpc.parallel.mpi import world
from tokensim_hpc.scenario import resolve

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]


def test_hinted_rebuild_equals_a_search_of_every_target():
    comm = world()
    # Many weak edges and many long-range ones: every kind of hint occurs.
    sc = resolve("defi", ["agents.n=4000", "run.ticks=48", "network.eta_min=0.45",
                          "network.p=0.3", "risk.every=0"])
    sim = Simulation(comm, sc, quiet=True)
    d = sim.domain
    rebuild = d.rebuild_halo
    seen = []

    def plan():
        return d.indices.copy(), d.halo.ghost_gid.copy(), d.halo.send_idx.copy()

    def compare_rebuilds(target_gid=None, mode=None, hint=None):
        kinds = np.zeros(3, dtype=np.int64) if hint is None else np.array(
            [np.sum(hint >= 0), np.sum(hint == -2), np.sum(hint == -1)])
        rebuild(target_gid, mode, hint)
        hinted = plan()
        # The same targets, every one searched by id (and its owner asked for).
        rebuild(target_gid, mode, hint=np.full(len(target_gid), -1, dtype=np.int32))
        seen.append((hint is not None, kinds, hinted, plan()))

    d.rebuild_halo = compare_rebuilds
    sim.run(writer=None)
    sim.close()
    assert len(seen) == 2 and all(hinted for hinted, _, _, _ in seen)
    for _, _, hinted, searched in seen:
        for a, b in zip(hinted, searched, strict=True):
            np.testing.assert_array_equal(a, b)
    kinds = comm.allreduce(sum(k for _, k, _, _ in seen))
    assert np.all(kinds > 0)  # owned slots, known ghosts and unknown targets all occurred
