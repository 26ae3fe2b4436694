"""Tests of the exact, order-independent sums (Cython kernel and numpy twin).

``math.fsum`` is correctly rounded, and so is `to_double`: results must be
equal, not close.
"""

import math
import struct

import numpy as np
import pytest

from tokensim_hpc._kernels import exactsum as cy_es
from tokensim_hpc.numpy_kernels import exactsum as np_es

BACKENDS = [pytest.param(cy_es, id="cython"), pytest.param(np_es, id="numpy")]
NACC = np_es.NACC
MAX = 1.7976931348623157e308
TINY = 5e-324  # 2**-1074, the smallest subnormal
MIN_NORMAL = 2.2250738585072014e-308


def bits(v):
    """IEEE bits of a float, to tell +0.0 from -0.0 and compare NaNs."""
    return struct.pack("<d", v)


def acc_of(backend, x):
    acc = np.zeros(NACC, dtype=np.int64)
    backend.accumulate(np.asarray(x, dtype=np.float64), acc)
    return acc


def esum(backend, x):
    return backend.to_double(acc_of(backend, x))


def mixed_data(rs, n):
    """Random signs and magnitudes spread over 1e-300 .. 1e300."""
    return rs.choice([-1.0, 1.0], n) * 10.0 ** rs.uniform(-300, 300, n)


def random_bit_doubles(rs, n, max_biased_exp=2000):
    """Doubles with uniformly random bit patterns (finite, incl. subnormals).

    The biased exponent is capped so that sums cannot overflow, where
    math.fsum would raise instead of returning inf.
    """
    b = rs.integers(0, 1 << 64, size=n, dtype=np.uint64, endpoint=False)
    e = (b >> np.uint64(52)) & np.uint64(0x7FF)
    b = np.where(e > max_biased_exp, b & ~(np.uint64(0x400) << np.uint64(52)), b)
    x = b.view(np.float64)
    assert np.all(np.isfinite(x))
    return x


# -- against math.fsum -------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(6))
def test_random_mixed_magnitudes_equal_fsum(backend, seed):
    rs = np.random.default_rng(seed)
    x = mixed_data(rs, 3000)
    assert esum(backend, x) == math.fsum(x)
    # Narrow magnitude ranges, where rounding of the result matters most.
    y = rs.normal(size=3000) * 10.0 ** rs.integers(-20, 20)
    assert esum(backend, y) == math.fsum(y)
    # Many near-cancelling pairs plus small residues.
    big = mixed_data(rs, 1000)
    z = np.concatenate([big, -big * (1 + 2.0**-52), rs.normal(size=50) * 1e-200])
    rs.shuffle(z)
    assert esum(backend, z) == math.fsum(z)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_random_bit_patterns_equal_fsum(backend, seed):
    rs = np.random.default_rng(100 + seed)
    x = random_bit_doubles(rs, 3000)
    assert esum(backend, x) == math.fsum(x)


def block_path_edges(rs, top):
    """Values that test the block path's split, against a block maximum ``top``: exact
    half-integers and values just either side of 1 after scaling by 2**(50 - E) (E the
    exponent of top), values with a full mantissa, zeros and top itself."""
    e = math.frexp(top)[1] - 1
    unit = math.ldexp(1.0, e - 50)  # y = 1 after scaling
    k = rs.integers(-1 << 20, 1 << 20, 200).astype(np.float64)
    return np.concatenate([
        (k + 0.5) * unit,                                   # ties when rounding y
        np.nextafter(unit, 0.0) * rs.choice([-1.0, 1.0], 50),  # |y| just below 1
        np.nextafter(unit, 1.0) * rs.choice([-1.0, 1.0], 50),  # |y| just above 1
        rs.uniform(-1.0, 1.0, 200) * (top / 512),           # full mantissas
        np.zeros(20), [top, -top, np.nextafter(top, 0.0)],
    ])



@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("top", [1.0, 3.0e-5, MAX, 2.0 ** -969, 2.0 ** -970, 1e300])
def test_block_split_edges_equal_fsum(backend, top):
    rs = np.random.default_rng(11)
    x = block_path_edges(rs, top)
    x = x[np.abs(x) <= top]
    if top == MAX:
        # One -MAX and the rest positive: no partial sum overflows (fsum would raise).
        x = np.append(np.abs(x[np.abs(x) < top / 2]), -top)
    for order in (x, rs.permutation(x)):
        acc = acc_of(backend, order)
        assert bits(backend.to_double(acc)) == bits(math.fsum(order))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x,expected",
    [
        ([1e308, 1.0, -1e308], 1.0),
        ([1e308, 1e-308, -1e308], 1e-308),
        ([1e300, TINY, -1e300], TINY),
        ([1.0, 1e100, 1.0, -1e100], 2.0),
        ([0.1] * 10, math.fsum([0.1] * 10)),
        ([1.0, 2.0**-53], 1.0),  # tie, rounds to even (down)
        ([1.0 + 2.0**-52, 2.0**-53], 1.0 + 2.0**-51),  # tie, rounds to even (up)
        ([1.0, 2.0**-53, TINY], 1.0 + 2.0**-52),  # just above the tie
        ([1.0, -(2.0**-54)], 1.0),  # tie below 1 (spacing halves), to even
        ([1.0, -(2.0**-54), -TINY], 1.0 - 2.0**-53),  # just below that tie
        ([3.0, -(2.0**-52), 2.0**-106], 3.0),  # above a tie, to the even 3.0
        ([3.0, -(2.0**-52), -(2.0**-106)], 3.0 - 2.0**-51),
    ],
)
def test_cancellation_and_rounding(backend, x, expected):
    got = esum(backend, x)
    assert got == expected
    assert got == math.fsum(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_subnormals(backend):
    cases = [
        [TINY] * 3,
        [MIN_NORMAL, -TINY],
        [MIN_NORMAL / 2, MIN_NORMAL / 2],
        [MIN_NORMAL, -MIN_NORMAL / 4, TINY],
        [-TINY, -TINY],
        [1e-310, 2e-310, -3e-310, 4e-320],
    ]
    for x in cases:
        assert esum(backend, x) == math.fsum(x)
    rs = np.random.default_rng(5)
    sub = rs.integers(-(1 << 52), 1 << 52, size=2000) * TINY
    assert esum(backend, sub) == math.fsum(sub)
    assert esum(backend, np.concatenate([sub, [1.0, -1.0]])) == math.fsum(sub)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zeros_and_empty(backend):
    # An exact zero is +0.0: the sign of zero is not tracked (as math.fsum).
    for x in ([], [0.0], [-0.0], [-0.0, -0.0], [0.0, -0.0], [1.5, -1.5], [MAX, -MAX]):
        got = esum(backend, x)
        assert bits(got) == bits(0.0)
        assert got == math.fsum(x)
    acc = acc_of(backend, [0.0, -0.0] * 10)
    assert not acc.any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x,expected",
    [
        ([math.nan], math.nan),
        ([1.0, math.nan, 2.0], math.nan),
        ([math.inf, 1.0], math.inf),
        ([-math.inf, 1e308, 1e308], -math.inf),
        ([math.inf, math.inf], math.inf),
        ([math.inf, -math.inf], math.nan),
        ([math.inf, math.nan], math.nan),
        ([-math.inf, -math.inf, 5.0], -math.inf),
        ([-math.nan, 0.0], math.nan),
    ],
)
def test_nan_and_inf(backend, x, expected):
    got = esum(backend, x)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected
    acc = acc_of(backend, x)
    assert acc[np_es.SLOT_NAN] == sum(math.isnan(v) for v in x)
    assert acc[np_es.SLOT_PINF] == sum(v == math.inf for v in x)
    assert acc[np_es.SLOT_NINF] == sum(v == -math.inf for v in x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_overflow_of_the_result(backend):
    half_ulp_max = 2.0**970  # half the spacing of doubles just below 2**1024
    assert esum(backend, [MAX, MAX]) == math.inf
    assert esum(backend, [-MAX, -MAX]) == -math.inf
    # No intermediate overflow: the sum is exact whatever the order.
    assert esum(backend, [MAX, MAX, -MAX]) == MAX
    assert esum(backend, [MAX] * 1000 + [-MAX] * 1000 + [1.0]) == 1.0
    assert esum(backend, [MAX] * 1000) == math.inf
    # Rounding at the top: a tie rounds to even, which is 2**1024 -> inf.
    assert esum(backend, [MAX, half_ulp_max]) == math.inf
    assert esum(backend, [MAX, half_ulp_max, -TINY]) == MAX
    assert esum(backend, [MAX, 2.0**969]) == MAX
    assert esum(backend, [-MAX, -half_ulp_max]) == -math.inf


# -- order and split invariance (what the simulator relies on) ---------------


def _split_points(rs, n, k):
    return np.sort(rs.integers(0, n + 1, size=k - 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_specials", [False, True])
def test_order_and_split_invariance(backend, with_specials):
    rs = np.random.default_rng(11)
    x = np.concatenate([mixed_data(rs, 3000), random_bit_doubles(rs, 1000), [1e308, -1e308]])
    if with_specials:
        x = np.concatenate([x, [math.inf, math.inf, math.nan]])
    whole = normalize_copy(backend, acc_of(backend, x))
    expected = backend.to_double(whole)
    if not with_specials:
        assert expected == math.fsum(x)
    for _trial in range(4):
        y = x[rs.permutation(x.size)]
        assert np.array_equal(normalize_copy(backend, acc_of(backend, y)), whole)
        for k in (1, 2, 3, 7, 64):
            # k "ranks": each accumulates its part and normalizes, then the
            # accumulators are summed as integers (an Allreduce) and the sum
            # normalized again.
            parts = np.split(y, _split_points(rs, y.size, k))
            accs = np.stack([acc_of(backend, p) for p in parts])
            backend.normalize(accs)
            total = accs.sum(axis=0)
            backend.normalize(total)
            assert np.array_equal(total, whole)
            got = backend.to_double(total)
            assert bits(got) == bits(expected)


def test_split_across_backends():
    """Ranks may even mix backends: the accumulators are the same integers."""
    rs = np.random.default_rng(12)
    x = mixed_data(rs, 4000)
    parts = np.split(x, [1000, 1001, 2500])
    accs = np.stack([acc_of(b, p) for b, p in zip([cy_es, np_es] * 2, parts, strict=True)])
    np_es.normalize(accs)
    total = np_es.normalize(accs.sum(axis=0))
    assert cy_es.to_double(total) == math.fsum(x)


def normalize_copy(backend, acc):
    return backend.normalize(acc.copy())


# -- Cython vs numpy twin ----------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 5, 1000, 300_000])
def test_cython_vs_numpy_accumulate(n):
    rs = np.random.default_rng(n)
    x = np.concatenate([mixed_data(rs, n // 2), random_bit_doubles(rs, n - n // 2)])
    a_c = acc_of(cy_es, x)
    a_n = acc_of(np_es, x)
    assert np.array_equal(np_es.normalize(a_c), np_es.normalize(a_n))
    # Accumulating onto a non-empty accumulator, from a strided view.
    cy_es.accumulate(x[::3], a_c)
    np_es.accumulate(x[::3], a_n)
    assert np.array_equal(np_es.normalize(a_c), np_es.normalize(a_n))
    assert bits(cy_es.to_double(a_c)) == bits(np_es.to_double(a_n))


@pytest.mark.parametrize(
    "v",
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        TINY,
        -TINY,
        MIN_NORMAL,
        MAX,
        -MAX,
        math.pi * 1e-200,
        math.inf,
        -math.inf,
        math.nan,
    ],
)
def test_cython_vs_numpy_length_one(v):
    a_c = acc_of(cy_es, [v])
    a_n = acc_of(np_es, [v])
    # The same value; the limbs before normalization may carry differently (the block
    # path splits a value into two integers, acc_add into three limbs).
    assert np.array_equal(np_es.normalize(a_c), np_es.normalize(a_n))
    got = cy_es.to_double(a_c)
    if math.isnan(v):
        assert math.isnan(got)
    else:
        assert got == v


@pytest.mark.parametrize("nrows", [1, 5, 40_000])
def test_cython_vs_numpy_grouped(nrows):
    # nrows = 40_000 takes the numpy twin's sparse (sort + reduceat) path.
    rs = np.random.default_rng(nrows)
    n = 6000
    x = np.concatenate([mixed_data(rs, n - 3), [math.nan, math.inf, -math.inf]])
    group = rs.integers(0, min(nrows, 50) if nrows > 5 else nrows, size=n)
    if nrows > 5:
        group = group * (nrows // 50)  # spread over the rows, many stay empty
    a_c = np.zeros((nrows, NACC), dtype=np.int64)
    a_n = np.zeros((nrows, NACC), dtype=np.int64)
    cy_es.accumulate_grouped(x, group, a_c)
    np_es.accumulate_grouped(x, group, a_n)
    assert np.array_equal(np_es.normalize(a_c), np_es.normalize(a_n))
    used = np.unique(group)
    got = np_es.to_doubles(a_c[used])
    for r, v in zip(used, got, strict=True):
        xs = x[group == r]
        if np.isfinite(xs).all():
            assert v == math.fsum(xs)
        else:
            assert not np.isfinite(v)
    unused = np.setdiff1d(np.arange(nrows), used)[:100]
    assert not a_c[unused].any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_grouped_vs_fsum_per_group(backend):
    rs = np.random.default_rng(21)
    nrows, n = 7, 5000
    x = mixed_data(rs, n)
    group = rs.integers(0, nrows - 1, size=n)  # the last row receives nothing
    acc = np.zeros((nrows, NACC), dtype=np.int64)
    backend.accumulate_grouped(x, group, acc)
    got = backend.to_doubles(acc)
    assert got.shape == (nrows,)
    for r in range(nrows):
        assert got[r] == math.fsum(x[group == r])
    assert bits(float(got[-1])) == bits(0.0)
    # Grouped accumulation is order independent too.
    perm = rs.permutation(n)
    acc2 = np.zeros((nrows, NACC), dtype=np.int64)
    backend.accumulate_grouped(x[perm], group[perm], acc2)
    assert np.array_equal(backend.normalize(acc2), backend.normalize(acc))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (1, 4), (2000, 5)])
def test_rows_vs_fsum_per_column(backend, shape):
    rs = np.random.default_rng(shape[0])
    x = mixed_data(rs, shape[0] * shape[1]).reshape(shape)
    acc = np.zeros((shape[1], NACC), dtype=np.int64)
    backend.accumulate_rows(x, acc)
    got = backend.to_doubles(acc)
    for c in range(shape[1]):
        assert got[c] == math.fsum(x[:, c])
    other = cy_es if backend is np_es else np_es
    acc_o = np.zeros_like(acc)
    other.accumulate_rows(x, acc_o)
    assert np.array_equal(np_es.normalize(acc), np_es.normalize(acc_o))
    # Fortran-ordered and strided inputs give the same accumulators.
    acc_f = np.zeros_like(acc)
    backend.accumulate_rows(np.asfortranarray(x), acc_f)
    assert np.array_equal(np_es.normalize(acc_f), acc)
    if shape[0] > 1:
        acc_s = np.zeros_like(acc)
        backend.accumulate_rows(x[::2], acc_s)
        assert list(backend.to_doubles(acc_s)) == [math.fsum(x[::2, c]) for c in range(shape[1])]


# -- chunking, normalization, helpers ----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_path(backend):
    """Calls longer than the chunk normalize between chunks; same result."""
    rs = np.random.default_rng(31)
    x = mixed_data(rs, 1001)
    group = rs.integers(0, 3, size=x.size)
    rows = x[:999].reshape(333, 3)
    ref = normalize_copy(backend, acc_of(backend, x))
    ref_g = np.zeros((3, NACC), dtype=np.int64)
    backend.accumulate_grouped(x, group, ref_g)
    ref_r = np.zeros((3, NACC), dtype=np.int64)
    backend.accumulate_rows(rows, ref_r)
    old = backend._set_chunk(7)
    try:
        acc = acc_of(backend, x)
        acc_g = np.zeros((3, NACC), dtype=np.int64)
        backend.accumulate_grouped(x, group, acc_g)
        acc_r = np.zeros((3, NACC), dtype=np.int64)
        backend.accumulate_rows(rows, acc_r)
        # Before the last chunk the accumulator was normalized, so at most 7
        # pieces (< 2**32 each) were added to each limb since.
        assert np.all(np.abs(acc[:67]) < 8 * 2**32)
    finally:
        assert backend._set_chunk(old) == 7
    assert np.array_equal(backend.normalize(acc), ref)
    assert np.array_equal(backend.normalize(acc_g), backend.normalize(ref_g))
    assert np.array_equal(backend.normalize(acc_r), backend.normalize(ref_r))
    assert backend.to_double(acc) == math.fsum(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_normalize(backend):
    rs = np.random.default_rng(41)
    accs = np.zeros((4, NACC), dtype=np.int64)
    data = [mixed_data(rs, 500), -np.abs(mixed_data(rs, 500)), [-TINY], [1.0, -1.0]]
    for r, x in enumerate(data):
        backend.accumulate(np.asarray(x), accs[r])
    before = [np_es.to_double(a) for a in accs]
    assert backend.normalize(accs) is accs
    assert np.all((accs[:, :67] >= 0) & (accs[:, :67] < 2**32))
    assert [np_es.to_double(a) for a in accs] == before
    assert accs[1, 67] < 0 and accs[2, 67] < 0  # negative sums: sign in limb 67
    assert accs[3, 67] == 0 and not accs[3].any()
    again = accs.copy()
    backend.normalize(again)  # idempotent, also on 1-D arrays
    assert np.array_equal(again, accs)
    one = accs[0].copy()
    backend.normalize(one)
    assert np.array_equal(one, accs[0])


def test_to_double_of_unnormalized_accumulators():
    acc = np.zeros(NACC, dtype=np.int64)
    acc[0] = -1
    assert np_es.to_double(acc) == -TINY
    acc[0] = 3
    acc[1] = -1  # 3 - 2**32 units of 2**-1074
    assert np_es.to_double(acc) == (3 - 2**32) * TINY
    acc[:] = 0
    acc[67] = 1  # 2**(2144 - 1074): far beyond the double range
    assert np_es.to_double(acc) == math.inf
    acc[67] = -1
    assert np_es.to_double(acc) == -math.inf
    acc[:] = 0
    acc[40] = 2**62  # 2**(1280 + 62 - 1074) = 2**268
    assert np_es.to_double(acc) == 2.0**268
    before = acc.copy()
    np_es.to_double(acc)
    assert np.array_equal(acc, before)  # not modified
    assert cy_es.to_double is np_es.to_double  # one shared helper
    assert list(np_es.to_doubles(np.zeros((0, NACC), dtype=np.int64))) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_arguments(backend):
    x = np.ones(4)
    with pytest.raises((ValueError, TypeError)):
        backend.accumulate(x, np.zeros(NACC - 1, dtype=np.int64))
    acc = np.zeros((3, NACC), dtype=np.int64)
    with pytest.raises(ValueError):
        backend.accumulate_grouped(x, np.array([0, 1, 3, 0]), acc)
    with pytest.raises(ValueError):
        backend.accumulate_grouped(x, np.array([0, -1, 2, 0]), acc)
    assert not acc.any()  # a bad group leaves the accumulators untouched
    with pytest.raises(ValueError):
        backend.accumulate_grouped(x, np.array([0, 1]), acc)
    with pytest.raises(ValueError):
        backend.accumulate_rows(np.ones((4, 2)), acc)
    with pytest.raises(ValueError):
        backend._set_chunk(0)


# -- the Cython block fast path (acc_add_block) --------------------------------
# Cython's `accumulate` adds blocks of up to 1024 values through two int64
# fixed-point words scaled to the block's largest value; values 2**53 below
# it, infinite or NaN blocks and blocks below 2**-969 take the per-value path.


def _block_cases():
    ulp_below_one = 1.0 - 2.0**-53
    cases = {}
    for e in (-969, -970, -1022, -100, 0, 52, 1023):
        big = math.ldexp(1.0, e)
        # Values exactly at, just above and just below 2**(e-53), the
        # smallest magnitude of the fast path, next to the block maximum.
        edge = math.ldexp(1.0, e - 53)
        cases[f"edge{e}"] = [big, edge, -edge, edge * (1 + 2**-52), edge * ulp_below_one,
                             -edge * ulp_below_one, TINY, -MIN_NORMAL]
        # 1024 values whose low words are near 2**53 (y just below 1 after
        # scaling), with the maximum: the int64 word sums at their limit.
        cases[f"lowfull{e}"] = [big] + [math.ldexp(ulp_below_one, e - 52)] * 1023
    # 1024 copies of the largest value of a binade, both signs: high words
    # at their limit.
    for e in (-900, 0, 300, 1010):
        top = math.ldexp(2.0 - 2.0**-52, e)
        cases[f"hifull{e}"] = [top] * 1024
        cases[f"hifullneg{e}"] = [-top] * 1024
    cases["zeros_nan"] = [0.0, -0.0, math.nan, 0.0]
    cases["all_zero"] = [0.0] * 5 + [-0.0] * 5
    cases["inf_block"] = [1.0, math.inf, -2.5, 1e-300]
    cases["nan_in_block"] = [1.0, math.nan, -2.5, 1e-300, 3e300]
    return cases


BLOCK_CASES = _block_cases()


@pytest.mark.parametrize("name", sorted(BLOCK_CASES))
def test_block_fast_path_edges(name):
    x = np.array(BLOCK_CASES[name], dtype=np.float64)
    a_c = acc_of(cy_es, x)
    a_n = acc_of(np_es, x)
    assert np.array_equal(np_es.normalize(a_c), np_es.normalize(a_n))
    got = cy_es.to_double(a_c)
    if np.isnan(x).any():
        assert math.isnan(got)
    elif np.isinf(x).any():
        assert got == math.fsum(x[np.isinf(x)])
    else:
        assert bits(got) == bits(math.fsum(x)) or got == math.fsum(x) == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_block_fast_path_random_blocks(seed):
    # Blocks of random length whose magnitudes span about 2**60 around a
    # random binade: values on both sides of the fast path's lower edge.
    rs = np.random.default_rng(1000 + seed)
    for _ in range(20):
        n = int(rs.integers(1, 2500))
        e = int(rs.integers(-1000, 1000))
        x = rs.choice([-1.0, 1.0], n) * np.ldexp(rs.uniform(1, 2, n), e - rs.integers(0, 60, n))
        x[rs.random(n) < 0.05] = 0.0
        a_c = acc_of(cy_es, x)
        assert np.array_equal(np_es.normalize(a_c), np_es.normalize(acc_of(np_es, x)))
        assert cy_es.to_double(a_c) == math.fsum(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_changes_equal_adding_new_and_minus_old(backend):
    """``accumulate_changes`` (new and -old staged as the kernels stage their
    holdings' changes, ``AccStage``) leaves the same normalized accumulator as adding
    new and -old: holdings that move a little or a lot, change sign, reach or leave zero,
    subnormals, the largest doubles, infinities and NaN; and chunked calls agree."""
    rs = np.random.default_rng(12)
    n = 4000
    old = rs.choice([-1.0, 1.0], n) * 10.0 ** rs.uniform(-5, 8, n)
    step = np.concatenate((old[:1000] * rs.uniform(-0.1, 0.1, 1000),      # small fills
                           old[1000:2000] * rs.uniform(-3.0, 3.0, 1000),  # sign changes too
                           old[2000:3000] * 2.0 ** rs.integers(-12, 12, 1000),  # gaps near 9
                           -old[3000:3100]))                               # to zero
    new = np.concatenate((old[:3100] + step, rs.choice([-1.0, 1.0], 900)
                          * 10.0 ** rs.uniform(-300, 300, 900)))
    special_new = [0.0, -0.0, TINY, 3 * TINY, MIN_NORMAL, MAX, -MAX, np.inf, 1.0, np.nan,
                   MIN_NORMAL * 0.75, 5.0]
    special_old = [TINY, 0.0, 2 * TINY, MIN_NORMAL, MIN_NORMAL * 0.5, MAX, MAX, 1.0, -np.inf,
                   2.0, MIN_NORMAL, np.nan]
    new = np.concatenate((new, special_new))
    old = np.concatenate((old, special_old))
    want = acc_of(backend, np.concatenate((new, -old)))
    backend.normalize(want)
    got = np.zeros(NACC, dtype=np.int64)
    backend.accumulate_changes(new, old, got)
    backend.normalize(got)
    np.testing.assert_array_equal(got, want)
    finite = (np.abs(new) < 1e300) & (np.abs(old) < 1e300)  # fsum overflows beyond
    exact = acc_of(backend, np.concatenate((new[finite], -old[finite])))
    assert backend.to_double(exact) == math.fsum(np.concatenate((new[finite], -old[finite])))
    if backend is cy_es:
        before = cy_es._set_chunk(7)
        try:
            chunked = np.zeros(NACC, dtype=np.int64)
            cy_es.accumulate_changes(new, old, chunked)
            cy_es.normalize(chunked)
        finally:
            cy_es._set_chunk(before)
        np.testing.assert_array_equal(chunked, want)
    with pytest.raises(ValueError):
        backend.accumulate_changes(new, old[:-1], got)
