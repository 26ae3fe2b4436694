"""B1 step kernels against their numpy twins (random, empty and length-1 inputs)."""

import numpy as np
import pytest

from tokensim_hpc._kernels import b1 as cy
from tokensim_hpc._kernels import rng as cy_rng
from tokensim_hpc.numpy_kernels import b1 as tw
from tokensim_hpc.numpy_kernels.exactsum import NACC, to_double


def _state(n, n_ghost, k, seed):
    rs = np.random.default_rng(seed)
    degree = rs.integers(0, k + 1, n)
    indptr = np.concatenate(([0], np.cumsum(degree))).astype(np.int64)
    indices = rs.integers(0, max(n + n_ghost, 1), indptr[-1]).astype(np.int32)
    weights = rs.random(indptr[-1])
    s = rs.uniform(-1, 1, n + n_ghost)
    gid = rs.permutation(10 * n + 1)[:n].astype(np.int64)
    cash = rs.uniform(0, 2000, n)
    tokens = rs.uniform(0, 20, n)
    return indptr, indices, weights, s, gid, cash, tokens


def _words(gid, tick=7, seed=42):
    """The cached Philox blocks of the shocks at ``tick`` (stream 1, lane-major as the model)."""
    words = np.empty((4, gid.shape[0]), dtype=np.uint64)
    cy_rng.random_raw_lanes(seed, gid, tick >> 2, 1, 0, words)
    return words


def _run(mod, n, n_ghost, k, sigma, seed, rows=None):
    indptr, indices, weights, s, gid, cash, tokens = _state(n, n_ghost, k, seed)
    rows = np.arange(n, dtype=np.int64) if rows is None else rows
    s_new = np.zeros_like(s)
    orders = np.zeros(n)
    acc = np.zeros((3, NACC), dtype=np.int64)
    mod.sentiment_orders(rows, indptr, indices, weights, 0.0, s, s_new, gid, _words(gid), cash,
                         tokens, orders,
                         1.3, 0.2, 0.5, 1.0, 0.5, sigma, 0.01, 42, 7, acc[0], acc[1])
    mod.execute_orders(cash, tokens, orders, 1.31, acc[2])
    return s_new, orders, cash, tokens, [to_double(a) for a in acc]


@pytest.mark.parametrize("n", [0, 1, 2, 1000])
@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_twin_equal(n, sigma):
    a = _run(cy, n, 5 if n else 0, 8, sigma, n)
    b = _run(tw, n, 5 if n else 0, 8, sigma, n)
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a[4], b[4], rtol=1e-12, atol=1e-10)


def test_row_subsets_compose():
    """Interior rows then boundary rows give the same result as all rows at once."""
    n = 300
    rows = np.random.default_rng(0).permutation(n).astype(np.int64)
    whole = _run(cy, n, 20, 8, 0.3, 5)
    indptr, indices, weights, s, gid, cash, tokens = _state(n, 20, 8, 5)
    s_new = np.zeros_like(s)
    orders = np.zeros(n)
    acc = np.zeros((2, NACC), dtype=np.int64)
    for part in (rows[:100], rows[100:]):
        cy.sentiment_orders(part, indptr, indices, weights, 0.0, s, s_new, gid, _words(gid),
                            cash, tokens, orders,
                            1.3, 0.2, 0.5, 1.0, 0.5, 0.3, 0.01, 42, 7, acc[0], acc[1])
    assert np.array_equal(s_new[:n], whole[0][:n])
    assert to_double(acc[0]) == whole[4][0]


def test_spec_formulas_by_hand():
    """One agent, two neighbours: the kernel follows the spec's steps 1-4 and 7."""
    indptr = np.array([0, 2], dtype=np.int64)
    indices = np.array([1, 2], dtype=np.int32)
    weights = np.array([0.5, 0.5])
    s = np.array([0.2, 0.4, -0.6])
    s_new = np.zeros(3)
    orders = np.zeros(1)
    cash, tokens = np.array([1000.0]), np.array([10.0])
    acc = np.zeros((3, NACC), dtype=np.int64)
    one = np.array([0], dtype=np.int64)
    cy.sentiment_orders(one, indptr, indices, weights, 0.0, s, s_new, one, _words(one), cash,
                        tokens, orders, 2.0, 0.5, 0.5, 1.0, 0.5, 0.0, 0.01, 1, 1, acc[0], acc[1])
    expect = np.tanh(0.5 * 0.2 + 1.0 * (0.5 * 0.4 - 0.5 * 0.6) + 0.5 * 0.5)
    assert s_new[0] == pytest.approx(expect, rel=1e-15)
    assert orders[0] == pytest.approx(0.01 * expect * 1000.0, rel=1e-15)
    cy.execute_orders(cash, tokens, orders, 2.0, acc[2])
    assert cash[0] == pytest.approx(1000.0 - orders[0])
    assert tokens[0] == pytest.approx(10.0 + orders[0] / 2.0)
    assert to_double(acc[2]) == pytest.approx(cash[0] + 2.0 * tokens[0])


def test_tanh_formula_is_accurate():
    from tokensim_hpc.numpy_kernels.fastmath import tanh_exp

    x = np.concatenate((np.linspace(-30, 30, 20001), [0.0, -0.0, 1e-300, -1e-300, 0.55, -0.55,
                                                     19.0, 19.5, np.inf, -np.inf]))
    got = tanh_exp(x)
    ref = np.tanh(x)
    nonzero = ref != 0
    assert np.max(np.abs(got[nonzero] - ref[nonzero]) / np.abs(ref[nonzero])) < 5e-16
    assert np.all(got[~nonzero] == 0.0)


def test_tanh_in_the_kernel_equals_the_twin_bit_for_bit():
    """The kernels' inline tanh and the numpy twin's, through B1's kernel in both
    backends (w_self = 1 and nothing else: s_new = tanh(s + 0)), agree bit for bit
    on both sides of the 0.625 switch, past the cap at 20, and on zeros, subnormals,
    infinities and NaN; and the values are tanh's."""
    rs = np.random.default_rng(5)
    x = np.concatenate((rs.normal(0.0, 1.0, 20000), rs.uniform(-25.0, 25.0, 5000),
                        np.ldexp(rs.uniform(-1.0, 1.0, 2000), -rs.integers(0, 1075, 2000)),
                        np.nextafter(0.625, [0.0, 1.0]),
                        # NaNs with payloads (kept through both), then the special values.
                        np.array([0x7FF8000000000001, 0xFFF8000000000123],
                                 dtype=np.uint64).view(np.float64),
                        [0.625, -0.625, 20.0, -20.0, 0.0, -0.0, np.inf, -np.inf, np.nan]))
    n = x.shape[0]
    rows = np.arange(n, dtype=np.int64)
    got = {}
    for mod in (cy, tw):
        s_new, orders = np.zeros(n), np.zeros(n)
        acc = np.zeros((2, NACC), dtype=np.int64)
        mod.sentiment_orders(rows, np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                             np.empty(0), 0.125, x, s_new, rows, _words(rows), np.ones(n),
                             np.ones(n), orders, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.01, 1, 1,
                             acc[0], acc[1])
        got[mod.__name__] = s_new
    a, b = got.values()
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))
    assert np.isnan(a[-1]) and a[-3] == 1.0 and a[-2] == -1.0
    finite = np.isfinite(x) & (np.tanh(x) != 0.0)
    assert np.max(np.abs(a[finite] / np.tanh(x[finite]) - 1.0)) < 5e-16


@pytest.mark.parametrize("k", [8, 6])
def test_uniform_weights_equal_explicit_weights(k):
    """An empty weight array with uniform_weight 1/k gives the weighted result: bit for
    bit when 1/k is a power of two (B1's k = 8), to rounding otherwise; in both backends."""
    n = 400
    rs = np.random.default_rng(k)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    indices = rs.integers(0, n, n * k).astype(np.int32)
    s = rs.uniform(-1, 1, n)
    gid = np.arange(n, dtype=np.int64)
    cash, tokens, rows = np.full(n, 1000.0), np.full(n, 10.0), np.arange(n, dtype=np.int64)

    def run(mod, weights, uniform):
        s_new, orders = np.zeros(n), np.zeros(n)
        acc = np.zeros((2, NACC), dtype=np.int64)
        mod.sentiment_orders(rows, indptr, indices, weights, uniform, s, s_new, gid, _words(gid),
                             cash, tokens, orders, 1.0, 0.1, 0.5, 1.0, 0.5, 0.0, 0.01, 1, 1,
                             acc[0], acc[1])
        return s_new

    for mod in (cy, tw):
        weighted = run(mod, np.full(n * k, 1.0 / k), 0.0)
        uniform = run(mod, np.empty(0), 1.0 / k)
        if k == 8:
            assert np.array_equal(weighted, uniform)
        np.testing.assert_allclose(weighted, uniform, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(run(cy, np.empty(0), 1.0 / k), run(tw, np.empty(0), 1.0 / k),
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("tick", [1, 2, 3, 4, 9])
def test_shock_is_the_counter_based_normal_of_the_tick(tick):
    """With only the shock acting, s_i = tanh(sigma xi_i), xi_i = normal4(seed, gid_i, tick)."""
    n = 2000
    gid = np.random.default_rng(tick).permutation(10 * n)[:n].astype(np.int64)
    words = _words(gid, tick=tick, seed=5)
    xi = np.empty(n)
    cy_rng.normal4(5, gid, tick, 1, 0, np.ascontiguousarray(words.T), xi)
    indptr = np.zeros(n + 1, dtype=np.int64)
    for mod in (cy, tw):
        s_new, orders = np.zeros(n), np.zeros(n)
        acc = np.zeros((2, NACC), dtype=np.int64)
        mod.sentiment_orders(np.arange(n, dtype=np.int64), indptr, np.empty(0, dtype=np.int32),
                             np.empty(0), 0.0, np.zeros(n), s_new, gid, words, np.full(n, 1.0),
                             np.full(n, 1.0), orders, 1.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.01, 5,
                             tick, acc[0], acc[1])
        np.testing.assert_allclose(np.arctanh(s_new) / 0.25, xi, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_neighbour_sum_order(weighted):
    """A row's edge e (from its first edge) goes to partial sum e % 4, in edge
    order, and n = (p0 + p1) + (p2 + p3): bit for bit in both backends, for
    degrees 0..11; the order is visible (a plain left-to-right sum differs)."""
    from tokensim_hpc.numpy_kernels.fastmath import tanh_exp

    rs = np.random.default_rng(11)
    differs = 0
    for degree in range(12):
        s = np.concatenate(([0.0], rs.uniform(-1, 1, degree) * 10.0 ** rs.integers(-17, 1, degree)))
        indptr = np.array([0, degree], dtype=np.int64)
        indices = np.arange(1, degree + 1, dtype=np.int32)
        weights = rs.uniform(0.5, 1.5, degree) if weighted else np.empty(0)
        terms = weights * s[1:] if weighted else s[1:]
        p = [0.0, 0.0, 0.0, 0.0]
        for e, t in enumerate(terms):
            p[e % 4] = p[e % 4] + t
        n_i = (p[0] + p[1]) + (p[2] + p[3])
        left_to_right = 0.0
        for t in terms:
            left_to_right = left_to_right + t
        differs += n_i != left_to_right
        expect = tanh_exp(np.array([n_i]))[0]
        one = np.array([0], dtype=np.int64)
        for mod in (cy, tw):
            s_new, orders = np.zeros(degree + 1), np.zeros(1)
            acc = np.zeros((2, NACC), dtype=np.int64)
            # w_self = 0, w_neigh = 1, no momentum, no shock: s_new = tanh(n).
            mod.sentiment_orders(one, indptr, indices, weights, 1.0, s, s_new, one, _words(one),
                                 np.array([1000.0]), np.array([10.0]), orders, 1.0, 0.0, 0.0,
                                 1.0, 0.0, 0.0, 0.01, 1, 1, acc[0], acc[1])
            assert s_new[0] == expect, (mod.__name__, degree)
    assert differs > 0
