"""Engine pieces on several ranks (run under mpirun with --with-mpi at 2, 3 and 4 ranks).

Every collective is entered by every rank before any assertion, and the
verdict is reduced over ranks, so a failure on one rank fails all of them
instead of leaving the others waiting.
"""

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tokensim_hpc._kernels import knn as knn_kernel
from tokensim_hpc.engine import Simulation, build_domain
from tokensim_hpc.parallel.directory import Directory
from tokensim_hpc.parallel.knn import distributed_knn
from tokensim_hpc.parallel.mpi import world
from tokensim_hpc.parallel.partition import hilbert_partition
from tokensim_hpc.parallel.reduce import allreduce_exact, new_accumulators
from tokensim_hpc.scenario import resolve
from tokensim_hpc.timing import Timers

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]


def all_ranks(ok: bool) -> bool:
    """True only if ``ok`` holds on every rank (collective)."""
    return bool(world().allreduce(bool(ok), op=_land()))


def _land():
    from mpi4py import MPI

    return MPI.LAND


def _gather_concat(arr):
    parts = world().allgather(arr)
    return np.concatenate(parts)


def test_partition_is_the_global_order_in_balanced_blocks():
    comm = world()
    rs = np.random.default_rng(100 + comm.rank)
    n_local = 500 + 37 * comm.rank
    # Few distinct keys, so equal keys straddle cuts and the id bisection runs.
    key = rs.integers(0, 40, n_local).astype(np.uint64)
    offset = sum(500 + 37 * r for r in range(comm.rank))
    gid = np.arange(offset, offset + n_local, dtype=np.int64)
    rs.shuffle(gid)
    part = hilbert_partition(comm, key, gid, {"payload": gid.astype(np.float64) * 2})
    all_key, all_gid = _gather_concat(part["key"]), _gather_concat(part["gid"])
    order = np.lexsort((all_gid, all_key))
    ok = np.array_equal(order, np.arange(all_key.size))
    ok &= np.array_equal(part["payload"], part["gid"] * 2.0)
    n_total = part["n_total"]
    lo, hi = comm.rank * n_total // comm.size, (comm.rank + 1) * n_total // comm.size
    ok &= part["gid"].size == hi - lo
    ok &= part["offset"] == comm.rank * n_total // comm.size
    assert all_ranks(ok)


def test_weighted_partition_follows_the_cumulative_weight_rule():
    comm = world()
    rs = np.random.default_rng(200 + comm.rank)
    n_local = 300 + 11 * comm.rank
    key = rs.integers(0, 60, n_local).astype(np.uint64)  # duplicates straddle cuts
    offset = sum(300 + 11 * r for r in range(comm.rank))
    gid = np.arange(offset, offset + n_local, dtype=np.int64)
    weights = rs.integers(0, 9, n_local)  # zero weights included
    part = hilbert_partition(comm, key, gid, {}, weights=weights)
    # Serial rule on everything: rank(e) = number of thresholds below e's inclusive weight.
    all_key = _gather_concat(key)
    all_gid = _gather_concat(gid)
    all_w = _gather_concat(weights)
    order = np.lexsort((all_gid, all_key))
    inclusive = np.cumsum(all_w[order])
    total = int(inclusive[-1])
    thresholds = np.array([(r * total) // comm.size for r in range(1, comm.size)])
    owner = np.searchsorted(thresholds, inclusive, side="left")
    expect = np.sort(all_gid[order][owner == comm.rank])
    ok = np.array_equal(np.sort(part["gid"]), expect)
    ok &= np.array_equal(part["weights"], all_w[np.searchsorted(all_gid, part["gid"])])
    assert all_ranks(ok)


def _partitioned_points(xy):
    comm = world()
    n = xy.shape[0]
    lo, hi = comm.rank * n // comm.size, (comm.rank + 1) * n // comm.size
    from tokensim_hpc._kernels.hilbert import hilbert_keys

    key = np.empty(hi - lo, dtype=np.uint64)
    x, y = xy[lo:hi, 0].copy(), xy[lo:hi, 1].copy()
    hilbert_keys(x, y, xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max(), 32, key)
    part = hilbert_partition(comm, key, np.arange(lo, hi, dtype=np.int64), {"x": x, "y": y})
    box = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
    return part, box


@pytest.mark.parametrize("k", [1, 8, 20])
def test_distributed_knn_equals_ckdtree(k):
    xy = np.random.default_rng(7).random((4000, 2))
    part, box = _partitioned_points(xy)
    nbr, local = distributed_knn(world(), part["x"], part["y"], part["gid"], k, box,
                                 knn_kernel.knn_grid)
    _, ref = cKDTree(xy).query(xy, k=k + 1)
    ok = np.array_equal(nbr, ref[part["gid"], 1:])
    known = local >= 0  # local indices, where given, point at the same agents
    ok &= np.array_equal(part["gid"][local[known]], nbr[known])
    assert all_ranks(ok)


def test_distributed_knn_ties_by_smaller_id():
    """A lattice: many equal distances; the order must be (distance, id) exactly."""
    g = np.arange(30, dtype=np.float64)
    xy = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    xy = xy[np.random.default_rng(1).permutation(xy.shape[0])]
    part, box = _partitioned_points(xy)
    k = 12
    nbr, local = distributed_knn(world(), part["x"], part["y"], part["gid"], k, box,
                                 knn_kernel.knn_grid)
    ok = True
    for row, i in enumerate(part["gid"]):
        d2 = ((xy - xy[i]) ** 2).sum(axis=1)
        d2[i] = np.inf
        ref = np.lexsort((np.arange(xy.shape[0]), d2))[:k]
        ok &= np.array_equal(nbr[row], ref)
    assert all_ranks(ok)


@pytest.mark.parametrize("mode", ["neighbor", "p2p"])
def test_halo_exchange_delivers_exactly_the_neighbours_values(mode):
    comm = world()
    sc = resolve("b1", ["agents.n=5000", "network.p=0.2", f"engine.halo={mode}"])
    d = build_domain(comm, sc, Timers())
    halo = d.halo
    slots = d.n_owned + halo.n_ghost
    col = np.full(slots, np.nan)
    col[:d.n_owned] = np.sin(d.gid.astype(np.float64)) + d.gid
    ids = np.full(slots, -1, dtype=np.int64)
    ids[:d.n_owned] = d.gid
    halo.exchange(col, ids)
    ghosts = halo.ghost_gid
    ok = np.array_equal(col[d.n_owned:], np.sin(ghosts.astype(np.float64)) + ghosts)
    ok &= np.array_equal(ids[d.n_owned:], ghosts)
    # Every edge target resolves to the right global id, and ghosts are really remote.
    ok &= np.array_equal(np.concatenate((d.gid, ghosts))[d.indices], d.edge_targets())
    ok &= not np.isin(ghosts, d.gid).any()
    # Ghosts are exactly the remote targets of this rank's edges.
    targets = d.edge_targets()
    ok &= np.array_equal(np.sort(ghosts), np.setdiff1d(targets, d.gid))
    # The overlapped form gives the same values.
    col2 = col.copy()
    col2[d.n_owned:] = np.nan
    halo.finish(halo.start(col2))
    ok &= np.array_equal(col, col2)
    n_ghost_total = comm.allreduce(halo.n_ghost)
    halo.destroy()
    assert all_ranks(ok)
    assert n_ghost_total > 0  # rewired edges cross partitions


def test_directory_lookup():
    comm = world()
    n = 1000
    rs = np.random.default_rng(5)
    owner = rs.integers(0, comm.size, n)
    mine = np.flatnonzero(owner == comm.rank).astype(np.int64)
    directory = Directory(comm, rs.permutation(mine) if mine.size else mine, n)
    ask = np.random.default_rng(comm.rank).integers(0, n, 300)
    assert all_ranks(np.array_equal(directory.lookup(ask), owner[ask]))


def test_exact_allreduce_equals_fsum_of_all_values():
    comm = world()
    rs = np.random.default_rng(comm.rank)
    values = rs.standard_normal(1000) * 10.0 ** rs.integers(-20, 20, 1000)
    from tokensim_hpc._kernels import exactsum

    acc = new_accumulators(2)
    exactsum.accumulate(values, acc[0])
    exactsum.accumulate(np.abs(values), acc[1])
    got = allreduce_exact(comm, acc)
    everything = _gather_concat(values)
    assert got[0] == math.fsum(everything) and got[1] == math.fsum(np.abs(everything))


def test_b1_sigma_zero_matches_spec_on_this_many_ranks():
    from test_b1_reference import check_against_reference

    check_against_reference("cython", n=2000, ticks=15)


def test_rank_without_agents_takes_part():
    """Fewer agents than some rank needs: empty ranks still enter every collective."""
    comm = world()
    n = 3
    sc = resolve("b1", [f"agents.n={n}", "network.k=2", "run.ticks=4", "model.sigma=0.0",
                        "model.s0_offset=0.3"])
    sim = Simulation(comm, sc)
    result = sim.run()
    sim.close()
    from b1_reference import b1_reference

    ref, _ = b1_reference(n, 4, 42, k=2, s0_offset=0.3)
    ok = np.allclose(result.records["price"], ref["price"], rtol=1e-12)
    ok &= comm.allreduce(sim.domain.n_owned) == n
    assert all_ranks(ok)


def test_rebuilt_halo_plan_equals_the_original_and_follows_new_edges():
    comm = world()
    sc = resolve("b1", ["agents.n=3000", "network.p=0.1"])
    d = build_domain(comm, sc, Timers())
    ghosts, indices = d.halo.ghost_gid.copy(), d.indices.copy()
    interior = d.interior_rows.copy()
    d.rebuild_halo()
    ok = np.array_equal(d.halo.ghost_gid, ghosts) and np.array_equal(d.indices, indices)
    ok &= np.array_equal(d.interior_rows, interior)
    # Point every agent's first edge at agent (gid + 1) mod N: new ghosts appear.
    targets = d.edge_targets().reshape(-1, 8).copy()
    targets[:, 0] = (d.gid + 1) % 3000
    d.rebuild_halo(targets.reshape(-1))
    ok &= np.array_equal(d.edge_targets().reshape(-1, 8)[:, 0], (d.gid + 1) % 3000)
    col = np.zeros(d.n_owned + d.halo.n_ghost)
    col[:d.n_owned] = d.gid * 2.0
    d.halo.exchange(col)
    ok &= np.array_equal(col[d.n_owned:], d.halo.ghost_gid * 2.0)
    d.halo.destroy()
    assert all_ranks(ok)


def test_halo_plan_refuses_a_directory_out_of_date_on_every_rank():
    """A directory that sends an id to a rank that does not own it makes every rank raise
    the same error while the plan is built (none serves another agent's values, none is
    left waiting)."""
    from tokensim_hpc.parallel.halo import HaloPlan

    comm = world()
    sc = resolve("b1", ["agents.n=3000", "network.p=0.05"])
    domain = build_domain(comm, sc, Timers())
    directory = domain.directory

    class OutOfDate:
        """The real owners, but the smallest id this rank asks about goes to the next
        rank."""

        def lookup(self, gid):
            owner = directory.lookup(gid).copy()
            if owner.size:
                owner[0] = (owner[0] + 1) % comm.size
            return owner

    message = None
    try:
        HaloPlan(comm, domain.gid, domain.edge_targets(), OutOfDate(), "p2p",
                 find_owned=domain.find_owned)
    except RuntimeError as exc:
        message = str(exc)
    domain.halo.destroy()
    messages = comm.allgather(message)
    assert all(m is not None and "out of date" in m for m in messages), messages
    assert len(set(messages)) == 1  # the same agent named on every rank
