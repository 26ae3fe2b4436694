"""Tests of the exact k-nearest-neighbour kernel and its numpy twin."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tokensim_hpc.numpy_kernels import knn as knn_np

knn_cy = pytest.importorskip("tokensim_hpc._kernels.knn")


def _run(mod, px, py, pgid, qx, qy, qgid, qr2, k):
    nq = len(qx)
    out_idx = np.full((nq, k), 12345, dtype=np.int64)
    out_d2 = np.full((nq, k), -1.0)
    out_count = np.full(nq, -7, dtype=np.int32)
    mod.knn_grid(px, py, pgid, qx, qy, qgid, qr2, k, out_idx, out_d2, out_count)
    return out_idx, out_d2, out_count


def _f(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _i(a):
    return np.ascontiguousarray(a, dtype=np.int64)


def _check_padding(idx, d2, count, k):
    cols = np.arange(k)[None, :]
    pad = cols >= count[:, None]
    assert np.all(idx[pad] == -1)
    assert np.all(np.isinf(d2[pad]) & (d2[pad] > 0))
    assert np.all(idx[~pad] >= 0)
    assert np.all(count >= 0) and np.all(count <= k)


def _both(px, py, pgid, qx, qy, qgid, qr2, k):
    """Run the kernel and its twin; assert identical results and return them."""
    args = (_f(px), _f(py), _i(pgid), _f(qx), _f(qy), _i(qgid), _f(qr2), k)
    a = _run(knn_cy, *args)
    b = _run(knn_np, *args)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype
    _check_padding(*a, k)
    return a


def _reference(px, py, pgid, qx, qy, qgid, qr2, k):
    """Brute force, one query at a time, written independently of the twin."""
    px, py, qx, qy = _f(px), _f(py), _f(qx), _f(qy)
    nq = len(qx)
    idx = np.full((nq, k), -1, dtype=np.int64)
    d2o = np.full((nq, k), np.inf)
    cnt = np.zeros(nq, dtype=np.int32)
    for q in range(nq):
        with np.errstate(over="ignore", invalid="ignore"):
            dx = qx[q] - px
            dy = qy[q] - py
            d2 = dx * dx + dy * dy
        ok = np.flatnonzero((pgid != qgid[q]) & (d2 <= qr2[q]))
        best = sorted(ok.tolist(), key=lambda p: (d2[p], pgid[p], p))[:k]
        cnt[q] = len(best)
        idx[q, : len(best)] = best
        d2o[q, : len(best)] = d2[best]
    return idx, d2o, cnt


# --- (1) against scipy's cKDTree ----------------------------------------------


@pytest.mark.parametrize("k", [1, 8])
def test_matches_ckdtree_on_uniform_points(k):
    rng = np.random.default_rng(42)
    n = 20000
    pts = rng.random((n, 2))
    gid = np.arange(n, dtype=np.int64)
    idx, d2, count = _run(
        knn_cy, _f(pts[:, 0]), _f(pts[:, 1]), gid, _f(pts[:, 0]), _f(pts[:, 1]), gid,
        np.full(n, np.inf), k,
    )
    dist_ref, idx_ref = cKDTree(pts).query(pts, k=k + 1)
    assert np.all(idx_ref[:, 0] == gid)  # the query itself comes first
    assert np.all(count == k)
    np.testing.assert_array_equal(idx, idx_ref[:, 1:])
    np.testing.assert_allclose(np.sqrt(d2), dist_ref[:, 1:], rtol=1e-15, atol=0)


def test_matches_ckdtree_with_shuffled_gids_and_other_queries():
    rng = np.random.default_rng(7)
    n, nq, k = 5000, 3000, 16
    pts = rng.random((n, 2))
    qs = rng.random((nq, 2)) * 1.2 - 0.1  # some outside the bbox
    gid = rng.permutation(n).astype(np.int64) * 3 + 11
    qgid = np.full(nq, -1, dtype=np.int64)  # excludes nothing
    idx, d2, count = _both(
        pts[:, 0], pts[:, 1], gid, qs[:, 0], qs[:, 1], qgid, np.full(nq, np.inf), k
    )
    dist_ref, idx_ref = cKDTree(pts).query(qs, k=k)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_allclose(np.sqrt(d2), dist_ref, rtol=1e-15, atol=0)


@pytest.mark.parametrize("k", [8, 64])
def test_matches_ckdtree_on_clustered_points(k):
    # Dense clusters put far more than two points in a cell.
    rng = np.random.default_rng(12)
    centres = rng.random((20, 2))
    pts = centres[rng.integers(0, 20, 6000)] + rng.normal(scale=0.01, size=(6000, 2))
    pts = np.concatenate([pts, rng.random((2000, 2))])
    n = len(pts)
    gid = np.arange(n, dtype=np.int64)
    idx, d2, count = _run(
        knn_cy, _f(pts[:, 0]), _f(pts[:, 1]), gid, _f(pts[:, 0]), _f(pts[:, 1]), gid,
        np.full(n, np.inf), k,
    )
    dist_ref, idx_ref = cKDTree(pts).query(pts, k=k + 1)
    assert np.all(count == k)
    np.testing.assert_array_equal(idx, idx_ref[:, 1:])
    np.testing.assert_allclose(np.sqrt(d2), dist_ref[:, 1:], rtol=1e-15, atol=0)


# --- (2) Cython kernel vs numpy twin -------------------------------------------


def test_random_mixed_radii():
    rng = np.random.default_rng(1)
    n, k = 1500, 8
    px, py = rng.random(n), rng.random(n)
    pgid = rng.permutation(n).astype(np.int64)
    # Queries: the points themselves, then fresh positions.
    qx = np.concatenate([px, rng.random(500)])
    qy = np.concatenate([py, rng.random(500)])
    qgid = np.concatenate([pgid, np.full(500, -5)])
    qr2 = np.where(rng.random(n + 500) < 0.5, np.inf, rng.random(n + 500) * 2e-3)
    idx, d2, count = _both(px, py, pgid, qx, qy, qgid, qr2, k)
    assert count.min() < k == count.max()
    ref = _reference(px, py, pgid, qx, qy, qgid, qr2, k)
    for x, y in zip((idx, d2, count), ref, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("k", [1, 3, 64])
def test_various_k(k):
    rng = np.random.default_rng(k)
    n = 700
    px, py = rng.random(n), rng.random(n)
    pgid = np.arange(n)
    _, _, count = _both(px, py, pgid, px, py, pgid, np.full(n, np.inf), k)
    assert np.all(count == k)


def test_empty_inputs():
    e = np.empty(0)
    ei = np.empty(0, dtype=np.int64)
    # No points and no queries.
    idx, d2, count = _both(e, e, ei, e, e, ei, e, 4)
    assert idx.shape == (0, 4) and d2.shape == (0, 4) and count.shape == (0,)
    # Queries but no points.
    q = np.array([0.5, -3.0, np.inf])
    idx, d2, count = _both(e, e, ei, q, q, np.arange(3), np.full(3, np.inf), 4)
    assert np.all(count == 0)
    # Points but no queries.
    p = np.array([0.1, 0.2, 0.3])
    _both(p, p, np.arange(3), e, e, ei, e, 2)


def test_length_one_inputs():
    p = np.array([0.25])
    q = np.array([0.75])
    idx, d2, count = _both(p, p, [7], q, q, [3], [np.inf], 2)
    assert count[0] == 1 and idx[0, 0] == 0 and d2[0, 0] == 0.5 * 0.5 + 0.5 * 0.5
    # The query is the point itself: excluded.
    idx, d2, count = _both(p, p, [7], p, p, [7], [np.inf], 1)
    assert count[0] == 0


def test_k_larger_than_number_of_points():
    rng = np.random.default_rng(3)
    px, py = rng.random(5), rng.random(5)
    pgid = np.arange(5) + 100
    qx = np.concatenate([px, [0.5, 2.0]])
    qy = np.concatenate([py, [0.5, -1.0]])
    qgid = np.concatenate([pgid, [-1, -1]])
    idx, d2, count = _both(px, py, pgid, qx, qy, qgid, np.full(7, np.inf), 10)
    np.testing.assert_array_equal(count, [4, 4, 4, 4, 4, 5, 5])


def test_queries_outside_bbox():
    rng = np.random.default_rng(4)
    n = 2000
    px, py = rng.random(n), rng.random(n)
    pgid = np.arange(n)
    qx = np.concatenate([rng.random(300) * 8 - 4, [1e6, -1e9, 3.0, np.inf, -np.inf, 0.5]])
    qy = np.concatenate([rng.random(300) * 8 - 4, [0.5, 1e9, np.inf, 0.5, np.inf, 1e300]])
    nq = len(qx)
    qr2 = np.full(nq, np.inf)
    qr2[:300:7] = 2.0
    idx, d2, count = _both(px, py, pgid, qx, qy, np.full(nq, -1), qr2, 8)
    assert np.all(count[300:] == 8)  # inf d2 is <= an inf radius
    ref = _reference(px, py, pgid, qx, qy, np.full(nq, -1), qr2, 8)
    for x, y in zip((idx, d2, count), ref, strict=True):
        np.testing.assert_array_equal(x, y)


def test_nan_queries_and_radii_find_nothing():
    px = np.array([0.0, 1.0, 0.5])
    qx = np.array([np.nan, 0.2, 0.2, 0.2])
    qy = np.array([0.3, np.nan, 0.2, 0.2])
    qr2 = np.array([np.inf, np.inf, np.nan, -1.0])
    _, _, count = _both(px, px, np.arange(3), qx, qy, np.full(4, -1), qr2, 2)
    assert np.all(count == 0)


def test_radius_is_inclusive():
    rng = np.random.default_rng(5)
    n = 400
    px, py = rng.random(n), rng.random(n)
    pgid = np.arange(n)
    qx, qy = rng.random(50), rng.random(50)
    # Radius exactly equal to the d2 of the 3rd nearest point (same formula).
    dx = qx[:, None] - px[None, :]
    dy = qy[:, None] - py[None, :]
    d2all = dx * dx + dy * dy
    qr2 = np.sort(d2all, axis=1)[:, 2]
    idx, d2, count = _both(px, py, pgid, qx, qy, np.full(50, -1), qr2, 8)
    np.testing.assert_array_equal(count, 3)
    np.testing.assert_array_equal(d2[:, 2], qr2)
    # One ulp less: the 3rd point drops out.
    _, _, count = _both(px, py, pgid, qx, qy, np.full(50, -1), np.nextafter(qr2, 0), 8)
    np.testing.assert_array_equal(count, 2)
    # Radius zero still finds a point at the query's position.
    _, _, count = _both(px, py, pgid, px[:5], py[:5], np.full(5, -1), np.zeros(5), 8)
    np.testing.assert_array_equal(count, 1)


def test_duplicated_positions_ties_by_gid():
    rng = np.random.default_rng(6)
    base = rng.random((60, 2))
    pts = base[rng.integers(0, 60, 900)]  # ~15 copies of each position
    n = len(pts)
    pgid = rng.permutation(n).astype(np.int64) * 2
    qx = np.concatenate([pts[:200, 0], rng.random(50)])
    qy = np.concatenate([pts[:200, 1], rng.random(50)])
    qgid = np.concatenate([pgid[:200], np.full(50, -1)])
    idx, d2, count = _both(pts[:, 0], pts[:, 1], pgid, qx, qy, qgid, np.full(250, np.inf), 20)
    ref = _reference(pts[:, 0], pts[:, 1], pgid, qx, qy, qgid, np.full(250, np.inf), 20)
    for x, y in zip((idx, d2, count), ref, strict=True):
        np.testing.assert_array_equal(x, y)
    # Within a run of equal d2 the gids ascend.
    g = pgid[idx[:200]]
    same = d2[:200, 1:] == d2[:200, :-1]
    assert np.all(g[:, 1:][same] > g[:, :-1][same])
    assert same.any()


def test_repeated_gids_break_ties_by_index():
    px = np.zeros(6)
    pgid = np.array([5, 5, 3, 3, 5, 9])
    idx, _, _ = _both(px, px, pgid, [0.0], [0.0], [9], [np.inf], 6)
    np.testing.assert_array_equal(idx[0], [2, 3, 0, 1, 4, -1])


@pytest.mark.parametrize(
    "shape", ["horizontal", "vertical", "diagonal", "one_position", "thin", "two"]
)
def test_degenerate_point_sets(shape):
    rng = np.random.default_rng(8)
    n = 1000
    t = rng.random(n)
    if shape == "horizontal":
        px, py = t, np.full(n, 0.3)
    elif shape == "vertical":
        px, py = np.full(n, -2.0), t
    elif shape == "diagonal":
        px, py = t, 1.0 - t
    elif shape == "one_position":
        px, py = np.full(n, 0.7), np.full(n, 0.7)
    elif shape == "thin":
        px, py = t, 0.5 + rng.random(n) * 1e-9
    else:
        px, py = np.array([0.0, 1.0]), np.array([0.0, 1.0])
        n = 2
    pgid = rng.permutation(n).astype(np.int64)
    qx = np.concatenate([px[:100], rng.random(60) * 3 - 1])
    qy = np.concatenate([py[:100], rng.random(60) * 3 - 1])
    nq = len(qx)
    qgid = np.concatenate([pgid[:100], np.full(nq - len(pgid[:100]), -1)])
    qr2 = np.full(nq, np.inf)
    qr2[1::3] = 0.01
    res = _both(px, py, pgid, qx, qy, qgid, qr2, 8)
    ref = _reference(px, py, pgid, qx, qy, qgid, qr2, 8)
    for x, y in zip(res, ref, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("scale", [1e-160, 1e-300, 1e150, 1e300])
def test_extreme_scales(scale):
    # Tiny (d2 underflows to subnormals or zero) and huge (d2 or the bbox
    # extent overflows) coordinates.
    rng = np.random.default_rng(9)
    n = 300
    px, py = (rng.random(n) - 0.5) * scale, (rng.random(n) - 0.5) * scale
    pgid = np.arange(n)
    qx = np.concatenate([px[:50], (rng.random(20) - 0.5) * 3 * scale])
    qy = np.concatenate([py[:50], (rng.random(20) - 0.5) * 3 * scale])
    qgid = np.concatenate([pgid[:50], np.full(20, -1)])
    qr2 = np.full(70, np.inf)
    res = _both(px, py, pgid, qx, qy, qgid, qr2, 6)
    ref = _reference(px, py, pgid, qx, qy, qgid, qr2, 6)
    for x, y in zip(res, ref, strict=True):
        np.testing.assert_array_equal(x, y)


def test_far_queries_with_small_radius():
    rng = np.random.default_rng(13)
    px, py = rng.random(500), rng.random(500)
    qx = np.array([5.0, -5.0, 0.5, 0.5, 1.0 + 1e-9, 1e8])
    qy = np.array([0.5, 0.5, 7.0, -7.0, 0.5, 1e8])
    qr2 = np.array([15.0, 16.0, 1.0, 36.1, 1e-12, 1e17])
    res = _both(px, py, np.arange(500), qx, qy, np.full(6, -1), qr2, 4)
    ref = _reference(px, py, np.arange(500), qx, qy, np.full(6, -1), qr2, 4)
    for x, y in zip(res, ref, strict=True):
        np.testing.assert_array_equal(x, y)


def test_non_finite_points():
    # A non-finite point makes the kernel fall back to a single cell.
    px = np.array([0.1, np.nan, 0.3, np.inf, 0.2, 5.0, 100.0])
    py = np.array([0.1, 0.2, np.inf, 0.4, 0.2, 1.0, 0.0])
    qx = np.array([0.0, 1e300, np.inf, 5.0, 5.0, -3.0])
    qy = np.array([0.0, 0.0, np.inf, 0.0, 0.0, 0.0])
    qr2 = np.array([np.inf, np.inf, np.inf, 10.0, np.inf, 9.5])
    for k in (1, 2, 7):
        args = (px, py, np.arange(7), qx, qy, np.full(6, -1), qr2, k)
        res = _both(*args)
        for x, y in zip(res, _reference(*args), strict=True):
            np.testing.assert_array_equal(x, y)
    assert res[2][3] == 1 and res[0][3, 0] == 5


def test_overflowing_extent():
    # The bbox extent overflows to inf: single-cell fallback; most d2 are inf.
    rng = np.random.default_rng(14)
    px = (rng.random(200) - 0.5) * 3.4e308
    py = rng.random(200)
    qx = np.concatenate([px[:20], [0.0, 1e308]])
    qy = np.concatenate([py[:20], [0.5, 0.5]])
    qgid = np.concatenate([np.arange(20), [-1, -1]])
    for qr2 in (np.full(22, np.inf), np.full(22, 1e300)):
        args = (px, py, np.arange(200), qx, qy, qgid, qr2, 6)
        for x, y in zip(_both(*args), _reference(*args), strict=True):
            np.testing.assert_array_equal(x, y)


def test_strided_inputs():
    rng = np.random.default_rng(10)
    p = rng.random((800, 2))
    g = np.arange(800, dtype=np.int64)
    q = rng.random((100, 4))
    k = 5
    out = [np.empty((100, k), np.int64), np.empty((100, k)), np.empty(100, np.int32)]
    r2 = np.full((100, 2), np.inf)
    for a in (p, g, q, r2):
        a.setflags(write=False)  # read-only inputs are accepted
    knn_cy.knn_grid(p[:, 0], p[:, 1], g, q[:, 0], q[:, 2], g[:100] + 1000, r2[:, 1], k, *out)
    ref = _both(p[:, 0], p[:, 1], g, q[:, 0], q[:, 2], g[:100] + 1000, r2[:, 1], k)
    for x, y in zip(out, ref, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("mod", [knn_cy, knn_np], ids=["cython", "numpy"])
def test_bad_arguments(mod):
    p = np.zeros(3)
    g = np.arange(3, dtype=np.int64)
    r2 = np.full(3, np.inf)

    def call(k=2, gid=g, idx_cols=2):
        out_idx = np.empty((3, idx_cols), np.int64)
        mod.knn_grid(p, p, gid, p, p, g, r2, k, out_idx, np.empty((3, k)),
                     np.empty(3, np.int32))

    with pytest.raises(ValueError):
        call(k=0)
    with pytest.raises(ValueError):
        call(gid=g[:2])
    with pytest.raises(ValueError):
        call(idx_cols=3)


# --- (3) exact ties on an integer lattice ----------------------------------------


@pytest.mark.parametrize("k", [1, 5, 8, 30])
def test_lattice_on_cell_boundaries(k):
    # 17 x 17 lattice plus duplicates, 512 points in all: the kernel's grid
    # then has cells of side exactly 1 with corners on the lattice, so points
    # and queries lie exactly on cell boundaries, at exact tie distances.
    rng = np.random.default_rng(20 + k)
    xs, ys = np.meshgrid(np.arange(17.0), np.arange(17.0))
    px, py = xs.ravel(), ys.ravel()
    extra = rng.integers(0, len(px), 512 - len(px))
    px, py = np.concatenate([px, px[extra]]), np.concatenate([py, py[extra]])
    n = len(px)
    pgid = rng.permutation(n).astype(np.int64)
    sel = rng.choice(n, 120, replace=False)
    qx = np.concatenate([px[sel], rng.integers(-2, 19, 80) * 0.5])
    qy = np.concatenate([py[sel], rng.integers(-2, 19, 80) * 0.5])
    nq = len(qx)
    qgid = np.concatenate([pgid[sel], np.full(80, -1)])
    qr2 = np.full(nq, np.inf)
    qr2[::4] = rng.integers(0, 9, len(qr2[::4])) * 0.25
    res = _both(px, py, pgid, qx, qy, qgid, qr2, k)
    ref = _reference(px, py, pgid, qx, qy, qgid, qr2, k)
    for x, y in zip(res, ref, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("k", [4, 12, 25])
def test_lattice_ties_broken_by_gid(k):
    rng = np.random.default_rng(11 + k)
    xs, ys = np.meshgrid(np.arange(30.0), np.arange(25.0))
    px, py = xs.ravel(), ys.ravel()
    n = len(px)
    pgid = rng.permutation(n).astype(np.int64) + 1000
    # Queries on lattice points (the point itself excluded), at cell centres
    # and edge midpoints (4 or 2 equidistant neighbours), and outside.
    sel = rng.choice(n, 150, replace=False)
    qx = np.concatenate([px[sel], px[sel[:60]] + 0.5, px[sel[:60]] + 0.5, [-3.0, 40.0, 14.5]])
    qy = np.concatenate([py[sel], py[sel[:60]] + 0.5, py[sel[:60]], [-2.0, 12.0, 30.0]])
    nq = len(qx)
    qgid = np.full(nq, -1, dtype=np.int64)
    qgid[:150] = pgid[sel]
    qr2 = np.full(nq, np.inf)
    qr2[::5] = 2.0  # a radius equal to the d2 of the diagonal neighbours
    idx, d2, count = _both(px, py, pgid, qx, qy, qgid, qr2, k)
    ref = _reference(px, py, pgid, qx, qy, qgid, qr2, k)
    for x, y in zip((idx, d2, count), ref, strict=True):
        np.testing.assert_array_equal(x, y)
    # Sanity: the 4 lattice neighbours of a lattice query tie at d2 = 1 and
    # come out by increasing gid.
    interior = (px[sel] > 0) & (px[sel] < 29) & (py[sel] > 0) & (py[sel] < 24)
    q = np.flatnonzero(interior & (qr2[:150] == np.inf))[0]
    assert np.all(d2[q, :4] == 1.0)
    assert np.all(np.diff(pgid[idx[q, :4]]) > 0)


@pytest.mark.parametrize(
    "spacing, offset", [(0.1, 0.0), (0.3, 1000.1), (1 / 3, -0.3), (0.7, 12345.6789), (1e-5, 0.1)]
)
def test_lattice_near_cell_boundaries_rounding(spacing, offset):
    # As above, with a spacing that is not a binary fraction: the lattice
    # lines fall within rounding of the cell boundaries, so the computed cell
    # of a point may be one off its exact one. The stopping bound must keep
    # a slack for that (without it, ties are missed here).
    rng = np.random.default_rng(int(spacing * 1e6) % 1000)
    xs, ys = np.meshgrid(np.arange(17) * spacing + offset, np.arange(17) * spacing + offset)
    px, py = xs.ravel(), ys.ravel()
    extra = rng.integers(0, len(px), 512 - len(px))
    px, py = np.concatenate([px, px[extra]]), np.concatenate([py, py[extra]])
    n = len(px)
    pgid = rng.permutation(n).astype(np.int64)
    sel = rng.integers(0, n, 150)
    qx = np.concatenate([px[sel], px[sel[:50]] + spacing / 2, px[sel[:50]]])
    qy = np.concatenate([py[sel], py[sel[:50]], py[sel[:50]] + spacing / 2])
    qgid = np.concatenate([pgid[sel], np.full(100, -1)])
    qr2 = np.full(len(qx), np.inf)
    for k in (1, 2, 3, 5, 12):
        args = (px, py, pgid, qx, qy, qgid, qr2, k)
        for x, y in zip(_both(*args), _reference(*args), strict=True):
            np.testing.assert_array_equal(x, y)
