"""Distributed clustering (label propagation with halo exchanges) against scipy's
connected components of the whole graph: serially, and under mpirun at 2, 3, 4 ranks."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tokensim_hpc import kernels as kernel_loader
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


def _check(theta, backend="cython"):
    comm = world()
    sc = resolve("b1", [f"agents.n={N}", "network.p=0.05"])
    domain = build_domain(comm, sc, Timers())
    clusters = Clusters(domain, theta, kernel_loader.load(backend))
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
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_clusters_serial(theta, backend):
    ok, sizes = _check(theta, backend)
    assert ok
    if theta == 0.0:
        assert sizes.size == N


@pytest.mark.parametrize("n_feat", [1, 2, 3])
def test_kept_edges_twin_equal(n_feat):
    from tokensim_hpc._kernels import clusters as cy
    from tokensim_hpc.numpy_kernels import clusters as tw

    rs = np.random.default_rng(n_feat)
    n, slots = 2000, 2600
    indptr = np.concatenate(([0], np.cumsum(rs.integers(0, 9, n)))).astype(np.int64)
    indices = rs.integers(0, slots, indptr[-1]).astype(np.int32)
    feats = rs.random((n_feat, slots))
    out = []
    for mod in (cy, tw):
        ptr, idx = np.empty(n + 1, dtype=np.int64), np.full(indptr[-1], -1, dtype=np.int32)
        m = mod.kept_edges(indptr, indices, feats, 0.3 ** 2, ptr, idx)
        out.append((m, ptr, idx[:m]))
    assert out[0][0] == out[1][0] and 0 < out[0][0] < indptr[-1]
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][2], out[1][2])
    src = np.repeat(np.arange(n), np.diff(indptr))
    keep = ((feats[:, src] - feats[:, indices]) ** 2).sum(axis=0) < 0.09
    np.testing.assert_array_equal(out[0][2], indices[keep])


def test_group_min_twin_equal():
    """Each group's minimum in one pass, with the lowered flag: both backends, against
    a per-group reference; NaN values lower nothing, and a pass that lowers nothing
    says so."""
    from tokensim_hpc._kernels import clusters as cy
    from tokensim_hpc.numpy_kernels import clusters as tw

    rs = np.random.default_rng(4)
    n_groups = 300
    group = rs.integers(0, n_groups, 5000).astype(np.int64)
    values = rs.integers(0, 10**6, 5000).astype(np.float64)
    values[::97] = np.nan
    want = np.full(n_groups, np.inf)
    for g in range(n_groups):
        v = values[(group == g) & ~np.isnan(values)]
        want[g] = v.min() if v.size else np.inf
    start = np.full(n_groups, np.inf)
    start[:10] = -1.0  # already below every value: stays
    want[:10] = -1.0
    for mod in (cy, tw):
        out = start.copy()
        assert mod.group_min(group, values, out) == 1
        np.testing.assert_array_equal(out, want)
        assert mod.group_min(group, values, out) == 0
        assert mod.group_min(group[:0], values[:0], out) == 0
        nan_out = np.array([np.nan, 5.0])  # only a smaller value replaces: NaN stays
        assert mod.group_min(np.array([0, 1]), np.array([1.0, 2.0]), nan_out) == 1
        np.testing.assert_array_equal(nan_out, [np.nan, 2.0])


@pytest.mark.parametrize("top", [0, 1, 5, 50, 400])
@pytest.mark.parametrize("spread", [1, 3, 1000])
def test_largest_pairs_equal_a_full_sort(top, spread):
    from tokensim_hpc.models.defi_clusters import _largest

    rng = np.random.default_rng(top * 7 + spread)
    label = rng.permutation(300).astype(np.int64) * 3  # unique, not in order
    size = rng.integers(1, spread + 1, size=300).astype(np.int64)  # many ties when small
    want = sorted(zip((-size).tolist(), label.tolist(), strict=True))[:top]
    got_label, got_size = _largest(label, size, top)
    assert got_label.tolist() == [lb for _, lb in want]
    assert got_size.tolist() == [-s for s, _ in want]
