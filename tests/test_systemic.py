"""Systemic risk R_sys (paper 6.1): the correlation kernel against its twin, and the
whole measure against a numpy reference computed from a run's snapshots."""

import tomllib

import h5py
import numpy as np
import pytest
from mpirun import simulate

from tokensim_hpc._kernels import risk as cy
from tokensim_hpc.numpy_kernels import risk as tw


@pytest.mark.parametrize("n", [0, 1, 500, 3000])
def test_edge_correlations_twin_equal(n):
    from tokensim_hpc.numpy_kernels.exactsum import NACC, normalize, to_doubles

    rs = np.random.default_rng(n)
    slots = n + n // 4
    indptr = np.concatenate(([0], np.cumsum(rs.integers(0, 10, n)))).astype(np.int64)
    indices = rs.integers(0, max(slots, 1), indptr[-1]).astype(np.int32)
    dev = rs.normal(0, 0.01, slots)
    sd = np.abs(rs.normal(0, 0.01, slots)) * (rs.random(slots) < 0.9)  # some zero
    cov0 = rs.normal(0, 1e-4, indptr[-1])
    degree = rs.integers(0, 30, n).astype(np.float64)
    dbar = 13.25
    out = []
    for mod in (cy, tw):
        cov, row = cov0.copy(), np.full(n, np.nan)
        acc = np.zeros((2, NACC), dtype=np.int64)
        mod.edge_correlations(indptr, indices, np.column_stack((dev, sd)), cov, 0.9, row,
                              degree, dbar, acc)
        out.append((cov, row, normalize(acc)))
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)
    for mod in (cy, tw):  # without the per-row sums: the same covariances and sums
        cov, acc = cov0.copy(), np.zeros((2, NACC), dtype=np.int64)
        mod.edge_correlations(indptr, indices, np.column_stack((dev, sd)), cov, 0.9,
                              np.zeros(0), degree, dbar, acc)
        np.testing.assert_array_equal(cov, out[0][0])
        np.testing.assert_array_equal(normalize(acc), out[0][2])
    if n > 100:
        src = np.repeat(np.arange(n), np.diff(indptr))
        want_cov = 0.9 * cov0 + 0.1 * dev[src] * dev[indices]
        np.testing.assert_allclose(out[0][0], want_cov, rtol=1e-12, atol=1e-20)
        w_edge = want_cov * (sd[src] * sd[indices])  # the kernel takes 1/sd (0: none)
        w = np.bincount(src, weights=w_edge, minlength=n)
        np.testing.assert_allclose(out[0][1], w, rtol=1e-10, atol=1e-12)
        # The exact sums: sum_i w_i (d_i - dbar)^2 and sum_i w_i.
        sums = to_doubles(out[0][2])
        np.testing.assert_allclose(sums, [np.sum(w * (degree - dbar) ** 2), w.sum()],
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", [0, 1, 300, 2000])
def test_agent_moments_twin_equal(n):
    rs = np.random.default_rng(n + 7)
    holdings = rs.uniform(0, 100, (9, n)) * (rs.random((9, n)) < 0.7)
    value = rs.uniform(0.5, 3000, 9)
    prev0 = rs.uniform(0, 5000, n) * (rs.random(n) < 0.95)
    mean0, var0 = rs.normal(0, 0.01, n), rs.uniform(0, 1e-4, n)
    if n > 10:
        holdings[:, 3], prev0[3] = 1.0, 1e-310  # a return that overflows to inf
    out = []
    for mod in (cy, tw):
        prev, mean, var = prev0.copy(), mean0.copy(), var0.copy()
        dev_sd = np.full((n + 5, 2), np.nan)
        mod.agent_moments(holdings, value, prev, mean, var, 0.8, dev_sd)
        out.append((prev, mean, var, dev_sd[:n, 0], dev_sd[:n, 1]))
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)
    wealth = (holdings * value[:, None]).sum(axis=0)
    np.testing.assert_allclose(out[0][0], wealth, rtol=1e-13)
    with np.errstate(over="ignore"):
        r = np.where(prev0 > 0, wealth / np.where(prev0 > 0, prev0, 1) - 1, 0.0)
    finite = np.isfinite(r)
    np.testing.assert_allclose(out[0][3][finite], (r - mean0)[finite], rtol=1e-9, atol=1e-15)
    if n > 10:
        # The overflowed return goes out as (dev, 1/sd) = (0, 0): its edges add nothing.
        assert not finite[3] and out[0][3][3] == 0.0 and out[0][4][3] == 0.0


@pytest.mark.parametrize("n", [0, 1, 2000])
def test_in_ties_twin_equal(n):
    rs = np.random.default_rng(n + 11)
    indices = rs.integers(0, max(n, 1), 8 * n).astype(np.int32)
    out = []
    for mod in (cy, tw):
        ties = np.full(n + 3, 2.0)  # counts are added to what is there
        mod.in_ties(indices, ties)
        out.append(ties)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], 2.0 + np.bincount(indices, minlength=n + 3))


def test_r_sys_equals_a_reference_from_the_snapshots(tmp_path):
    """Sampled every 8 ticks with snapshots at the same ticks: the returns, the
    exponentially weighted correlations on every edge, the ties in and out and the
    paper's formula, recomputed in numpy from the file, give the recorded R_sys."""
    out = tmp_path / "risk.h5"
    simulate(3, out, "agents.n=3000", "run.ticks=32", "output.every=8", "risk.every=8",
             "risk.halflife=2.0", "network.rewire_every=0", scenario="defi")
    with h5py.File(out, "r") as f:
        wealth = f["snapshots/wealth"][...]
        src, dst = f["network/source"][...], f["network/target"][...]
        gid = f["agents/gid"][...]
        r_sys = f["timeseries/systemic_risk"][...]
        dbar_rec = f["timeseries/mean_connectedness"][...]
        scenario = tomllib.loads(f.attrs["scenario"])
    assert scenario["risk"]["every"] == 8
    n = gid.size
    pos = np.empty(n, dtype=np.int64)
    pos[gid] = np.arange(n)  # agent id -> column of the snapshots
    i, j = pos[src], pos[dst]
    d = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    lam = 2.0 ** (-1.0 / 2.0)
    mean, var, cov = np.zeros(n), np.zeros(n), np.zeros(src.size)
    assert np.all(np.isnan(r_sys[:15]))  # two samples (ticks 8 and 16) needed
    for snap in (2, 3, 4):  # ticks 16, 24, 32
        r = np.where(wealth[snap - 1] > 0, wealth[snap] / wealth[snap - 1] - 1.0, 0.0)
        dev = r - mean
        var = lam * var + (1 - lam) * dev * dev
        cov = lam * cov + (1 - lam) * dev[i] * dev[j]
        mean = lam * mean + (1 - lam) * r
        sd = np.sqrt(var)
        den = sd[i] * sd[j]
        w = np.divide(cov, den, out=np.zeros_like(cov), where=den > 0)
        dbar = d.mean()
        want = 1.0 - (w * (d[i] - dbar) ** 2).sum() / (d.astype(float) ** 2).sum()
        tick = 8 * snap
        assert r_sys[tick - 1] == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert dbar_rec[tick - 1] == dbar
        assert np.all(r_sys[tick - 1:tick + 7] == r_sys[tick - 1])  # held until the next
    assert np.ptp(r_sys[15:]) > 0 and np.all(r_sys[15:] < 1.0)


@pytest.mark.parametrize("k, longest", [(0, 1), (1, 1), (300, 3), (50, 400)])
def test_transpose_sums_twin_equal(k, longest):
    rs = np.random.default_rng(k + longest)
    length = rs.integers(1, longest + 1, k)
    starts = np.zeros(k, dtype=np.int64)
    np.cumsum(length[:-1], out=starts[1:])
    m = int(length.sum())
    b = rs.standard_normal(40) * 10.0 ** rs.integers(-8, 8, 40)
    index = rs.integers(0, 40, m).astype(np.int64)
    coef = rs.uniform(0, 3, m)
    rows = rs.permutation(k + 5)[:k].astype(np.int64)
    out = []
    for mod in (cy, tw):
        y = np.full(k + 5, 7.0)  # entries outside rows are left as they are
        mod.transpose_sums(b, index, coef, starts, rows, y)
        out.append(y)
    np.testing.assert_array_equal(out[0], out[1])
    # By hand: each segment added in order from its first term.
    want = np.full(k + 5, 7.0)
    for s in range(k):
        terms = coef[starts[s]:starts[s] + length[s]] * b[index[starts[s]:starts[s] + length[s]]]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc + t
        want[rows[s]] = acc
    np.testing.assert_array_equal(out[0], want)


@pytest.mark.parametrize("mod", [cy, tw])
def test_transpose_sums_refuses_bad_segments(mod):
    b, coef = np.ones(4), np.ones(3)
    index = np.array([0, 1, 2], dtype=np.int64)
    y = np.zeros(4)
    with pytest.raises(ValueError, match="segment"):  # an empty segment
        mod.transpose_sums(b, index, coef, np.array([0, 0], dtype=np.int64),
                           np.array([0, 1], dtype=np.int64), y)
    with pytest.raises(ValueError, match="outside b"):
        mod.transpose_sums(b, np.array([0, 1, 9], dtype=np.int64), coef,
                           np.array([0], dtype=np.int64), np.array([0], dtype=np.int64), y)
    with pytest.raises(ValueError, match="outside out"):
        mod.transpose_sums(b, index, coef, np.array([0], dtype=np.int64),
                           np.array([4], dtype=np.int64), y)


@pytest.mark.parametrize("n, m, hub", [(0, 0, 0), (1, 1, 0), (50, 0, 0), (300, 2000, 0),
                                       (40, 3000, 700)])
def test_transpose_order_twin_equal(n, m, hub):
    rs = np.random.default_rng(n + m)
    target = rs.integers(0, max(n, 1), m).astype(np.int64)
    target[:hub] = 3  # one target with many terms: the heapsort path
    key = rs.permutation(5 * m + 1)[:m].astype(np.int64)
    got = cy.transpose_order(n, target, key)
    want = tw.transpose_order(n, target, key)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == np.int64
        np.testing.assert_array_equal(a, b)
    order, rows, starts = got
    # By hand: by target, then key; each target with terms starts where its run does.
    np.testing.assert_array_equal(order, np.lexsort((key, target)))
    np.testing.assert_array_equal(rows, np.unique(target))
    np.testing.assert_array_equal(target[order][starts], rows)
    np.testing.assert_array_equal(np.searchsorted(target[order], rows), starts)


@pytest.mark.parametrize("mod", [cy, tw])
def test_transpose_order_refuses_bad_targets(mod):
    key = np.arange(3, dtype=np.int64)
    with pytest.raises(ValueError, match="outside"):
        mod.transpose_order(4, np.array([0, 4, 1], dtype=np.int64), key)
    with pytest.raises(ValueError, match="same length"):
        mod.transpose_order(4, np.array([0, 1], dtype=np.int64), key)


def test_a_row_without_measurable_variance_sums_to_zero():
    """1/sd_i = 0 (no measurable or an infinite variance) makes the row's correlation sum
    exactly 0, even when its terms overflow (the row's factor is a select, not inf * 0);
    in both backends."""
    from tokensim_hpc.numpy_kernels.exactsum import NACC

    indptr = np.array([0, 2, 3], dtype=np.int64)
    indices = np.array([1, 2, 2], dtype=np.int32)
    # Row 0: 1/sd = 0, and its edge to agent 1 overflows (c = inf, times 1/sd_1 > 0).
    dev_isd = np.array([[1e200, 0.0], [1e200, 1e-10], [3.0, 2.0]])
    out = []
    for mod in (cy, tw):
        cov, rows = np.zeros(3), np.full(2, 7.0)
        mod.edge_correlations(indptr, indices, dev_isd, cov, 0.5, rows, np.ones(2), 1.0,
                              np.zeros((2, NACC), dtype=np.int64))
        out.append(rows)
    for rows in out:
        assert rows[0] == 0.0 and np.isfinite(rows[1])
    np.testing.assert_array_equal(out[0], out[1])
