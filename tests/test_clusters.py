"""Distributed clustering (label propagation with halo exchanges) against scipy's
connected components of the whole graph: serially, and under mpirun at 2, 3, 4 ranks."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tokensim_hpc.engine import build_domain
from tokensim_hpc.models.defi_clusters import Clusters
from tokensim_hpc.parallel.mpi import world
from tokensim_hpc.scenario import resolve
from tokensim_hpc.timing import Timers

N = 3000


XY = np.random.default_rng(42).random((N, 2))  # B1's positions for seed 42


def _features(gid):
    # Positions plus a wiggle: close for spatial neighbours, so thresholds cut the
    # network into many clusters of various sizes.
    return XY[gid] + 0.02 * np.column_stack((np.sin(gid * 0.37), np.cos(gid * 0.011)))


def _check(theta):
    comm = world()
    sc = resolve("b1", [f"agents.n={N}", "network.p=0.05"])
    domain = build_domain(comm, sc, Timers())
    clusters = Clusters(domain, theta)
    labels = clusters.find(_features(domain.gid))
    n_clusters, top, top_sizes = clusters.sizes(5)
    gid = np.concatenate(comm.allgather(domain.gid))
    got = np.empty(N, dtype=np.int64)
    got[gid] = np.concatenate(comm.allgather(labels))
    src = np.concatenate(comm.allgather(np.repeat(domain.gid, np.diff(domain.indptr))))
    dst = np.concatenate(comm.allgather(domain.edge_targets()))
    domain.halo.destroy()
    f = _features(np.arange(N))
    keep = ((f[src] - f[dst]) ** 2).sum(axis=1) < theta * theta
    graph = coo_matrix((np.ones(keep.sum()), (src[keep], dst[keep])), shape=(N, N))
    _, comp = connected_components(graph.tocsr(), directed=False)
    smallest = np.full(comp.max() + 1, N)
    np.minimum.at(smallest, comp, np.arange(N))
    want = smallest[comp]
    sizes = np.bincount(comp)
    # The five largest, ties by smaller label (= smallest id of the cluster).
    by_size = sorted(zip(-sizes, smallest, strict=True))[:5]
    ok = np.array_equal(got, want) and n_clusters == sizes.size
    ok &= top.tolist() == [int(lb) for _, lb in by_size]
    ok &= top_sizes.tolist() == [int(-s) for s, _ in by_size]
    return bool(comm.allreduce(ok, op=_land())), sizes


def _land():
    from mpi4py import MPI

    return MPI.LAND


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("theta", [0.02, 0.025])
def test_clusters_across_ranks(theta):
    ok, sizes = _check(theta)
    assert ok
    assert 1 < sizes.size < N and sizes.max() > 10  # neither all singletons nor one blob


@pytest.mark.parametrize("theta", [0.0, 0.02, 0.025, 10.0])
def test_clusters_serial(theta):
    ok, sizes = _check(theta)
    assert ok
    if theta == 0.0:
        assert sizes.size == N
