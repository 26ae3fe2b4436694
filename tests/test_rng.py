"""Tests of the Philox4x64-10 random numbers (Cython kernel and numpy twin).

Keying: key = (seed, stream), counter = (gid, tick, draw, 0); the normals'
rare extra words come from the blocks of counter (gid, tick, draw, j), j >= 1.
"""

import math

import numpy as np
import pytest
from scipy import stats

from tokensim_hpc._kernels import rng as cy_rng
from tokensim_hpc.numpy_kernels import rng as np_rng

BACKENDS = [pytest.param(cy_rng, id="cython"), pytest.param(np_rng, id="numpy")]
U64 = (1 << 64) - 1


def ref_philox(ctr, key):
    """Pure-Python Philox4x64-10 (Random123) on Python ints: the reference."""
    m0, m1 = 0xD2E7470EE14C6C93, 0xCA5A826395121157
    w0, w1 = 0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + w0) & U64, (k1 + w1) & U64
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = (p1 >> 64) ^ c1 ^ k0, p1 & U64, (p0 >> 64) ^ c3 ^ k1, p0 & U64
    return [c0, c1, c2, c3]


def numpy_philox_block(ctr, key):
    """The Philox block of counter ``ctr`` from ``numpy.random.Philox``.

    Numpy adds one to its 256-bit counter (little-endian words, with carry)
    *before* computing each block of four outputs, so the block of counter c
    is the first four ``random_raw`` outputs of a generator whose counter was
    set to c - 1 (modulo 2**256). The key is the little-endian 128-bit int.
    """
    c = sum(v << (64 * i) for i, v in enumerate(ctr))
    bg = np.random.Philox(counter=(c - 1) % (1 << 256), key=key[0] | (key[1] << 64))
    return [int(v) for v in bg.random_raw(4)]


# (seed, gid, tick, stream, draw): small, zero, and large values whose
# products and key additions carry across 32- and 64-bit boundaries.
CASES = [
    (0, 0, 0, 0, 0),
    (1, 0, 0, 0, 0),
    (0, 1, 0, 0, 0),
    (12345, 42, 7, 3, 1),
    (U64, U64, U64, U64, U64),
    (U64, 0, 0, U64, 0),
    (0x0123456789ABCDEF, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFF00000000, 0x8000000000000000),
    (0x9E3779B97F4A7C15, (1 << 63) - 1, 1 << 63, 0xBB67AE8584CAA73B, 2),
]


def ref_normal(seed, gid, tick, stream, draw, tables):
    """Scalar reference of the Ziggurat normal on Python ints and floats.

    Reads the words S[k] = word k % 4 of the block of counter
    (gid, tick, draw, k // 4) from `ref_philox`, as documented in
    ``_philox.pxd``. Returns the number, the count of words read and the
    path that produced it ("fast", "wedge" or "tail").
    """
    ki = [int(v) for v in tables[0]]
    wi = [float(v) for v in tables[1]]
    fi = [float(v) for v in tables[2]]
    r = np_rng.ZIG_R
    k = 0
    block = []

    def word():
        nonlocal k, block
        if k % 4 == 0:
            block = ref_philox((gid, tick, draw, k // 4), (seed, stream))
        k += 1
        return block[(k - 1) % 4]

    def uniform():
        return (word() >> 11) * 2.0**-53

    while True:
        w = word()
        idx, sign, rabs = w & 0xFF, (w >> 8) & 1, (w >> 9) & (2**52 - 1)
        x = float(rabs) * wi[idx]
        if sign:
            x = -x
        if rabs < ki[idx]:
            return x, k, "fast" if k == 1 else "wedge"
        if idx == 0:
            while True:
                u1 = uniform()
                u2 = uniform()
                xx = -math.log1p(-u1) / r
                yy = -math.log1p(-u2)
                if yy + yy > xx * xx:
                    return (-(r + xx) if sign else r + xx), k, "tail"
        if (fi[idx - 1] - fi[idx]) * uniform() + fi[idx] < math.exp(-0.5 * x * x):
            return x, k, "wedge"


def _fast_path(tables, w0):
    """Whether word 0 alone gives the normal, and the value it gives."""
    ki, wi, _ = tables
    idx = (w0 & np.uint64(0xFF)).astype(np.intp)
    rabs = (w0 >> np.uint64(9)) & np.uint64(2**52 - 1)
    x = rabs.astype(np.float64) * wi[idx]
    x = np.where((w0 >> np.uint64(8)) & np.uint64(1), -x, x)
    return rabs < ki[idx], x


def _normal(backend, seed, gids, tick, stream, draw):
    gid = np.asarray(gids, dtype=np.uint64).view(np.int64)
    out = np.empty(gid.shape[0])
    backend.normal(seed, gid, tick, stream, draw, out)
    return out


def _raw(backend, seed, gids, tick, stream, draw):
    gid = np.asarray(gids, dtype=np.uint64).view(np.int64)
    out = np.empty((gid.shape[0], 4), dtype=np.uint64)
    backend.random_raw(seed, gid, tick, stream, draw, out)
    return out


def test_reference_known_answers():
    # Random123's kat_vectors for philox4x64 with 10 rounds.
    assert ref_philox((0, 0, 0, 0), (0, 0)) == [
        0x16554D9ECA36314C,
        0xDB20FE9D672D0FDC,
        0xD7E772CEE186176B,
        0x7E68B68AEC7BA23B,
    ]
    assert ref_philox((U64,) * 4, (U64, U64)) == [
        0x87B092C3013FE90B,
        0x438C3C67BE8D0224,
        0x9CC7D7C69CD777B6,
        0xA09CAEBF594F0BA0,
    ]


@pytest.mark.parametrize(
    "ctr,key",
    [
        ((0, 0, 0, 0), (0, 0)),  # c - 1 borrows through all four words
        ((1, 0, 0, 0), (0, 0)),
        ((0, 5, 0, 0), (1, 2)),  # borrow from word 1
        ((0, 0, 9, 0), (U64, 1)),  # borrow from word 2
        ((U64, U64, U64, U64), (U64, U64)),
        (
            (0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89),
            (0x452821E638D01377, 0xBE5466CF34E90C6C),
        ),
    ],
)
def test_numpy_philox_matches_reference(ctr, key):
    assert numpy_philox_block(ctr, key) == ref_philox(ctr, key)
    # The increment-before-generate rule: a generator set to counter c
    # yields the blocks of c + 1, c + 2, ... (with carries between words).
    c = sum(v << (64 * i) for i, v in enumerate(ctr))
    bg = np.random.Philox(counter=c, key=key[0] | (key[1] << 64))
    words = [int(v) for v in bg.random_raw(8)]
    for k in (1, 2):
        nxt = (c + k) % (1 << 256)
        assert words[4 * (k - 1) : 4 * k] == ref_philox(
            [(nxt >> (64 * i)) & U64 for i in range(4)], key
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed,gid,tick,stream,draw", CASES)
def test_raw_known_answer_vs_numpy_philox(backend, seed, gid, tick, stream, draw):
    out = _raw(backend, seed, [gid], tick, stream, draw)
    expected = numpy_philox_block((gid, tick, draw, 0), (seed, stream))
    assert [int(v) for v in out[0]] == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_many_gids_vs_numpy_philox(backend):
    rs = np.random.default_rng(7)
    gid = rs.integers(-(1 << 63), (1 << 63) - 1, size=64, dtype=np.int64, endpoint=True)
    gid[:4] = [0, -1, np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    out = np.empty((gid.size, 4), dtype=np.uint64)
    seed, tick, stream, draw = 0xFEEDFACECAFEBEEF, 1000, 17, 3
    backend.random_raw(seed, gid, tick, stream, draw, out)
    for g, row in zip(gid.view(np.uint64), out, strict=True):
        assert [int(v) for v in row] == numpy_philox_block((int(g), tick, draw, 0), (seed, stream))


@pytest.mark.parametrize("n", [0, 1, 2, 1000, 40_000])
@pytest.mark.parametrize("keys", [(0, 0, 0, 0), (2024, 5, 1, 0), (U64, U64, U64, U64)])
def test_cython_vs_numpy_twin(n, keys):
    seed, tick, stream, draw = keys
    rs = np.random.default_rng(n)
    gid = rs.integers(-(1 << 63), (1 << 63) - 1, size=n, dtype=np.int64, endpoint=True)
    raw_c = np.empty((n, 4), dtype=np.uint64)
    raw_n = np.empty((n, 4), dtype=np.uint64)
    cy_rng.random_raw(seed, gid, tick, stream, draw, raw_c)
    np_rng.random_raw(seed, gid, tick, stream, draw, raw_n)
    np.testing.assert_array_equal(raw_c, raw_n)
    for fn in ("uniform", "normal"):
        out_c = np.empty(n)
        out_n = np.empty(n)
        getattr(cy_rng, fn)(seed, gid, tick, stream, draw, out_c)
        getattr(np_rng, fn)(seed, gid, tick, stream, draw, out_n)
        if fn == "uniform":
            np.testing.assert_array_equal(out_c, out_n)  # bit-identical
        else:
            np.testing.assert_allclose(out_c, out_n, rtol=1e-12, atol=0)
            # The fast path (no libm call) is bit-identical, signed zeros too.
            fast, _ = _fast_path(np_rng.ziggurat_tables(), raw_c[:, 0])
            np.testing.assert_array_equal(out_c[fast].view(np.uint64), out_n[fast].view(np.uint64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_uniform_and_normal_follow_the_documented_mapping(backend):
    gid = np.arange(-500, 500, dtype=np.int64)
    keys = (99, 4, 2, 1)
    raw = np.empty((gid.size, 4), dtype=np.uint64)
    backend.random_raw(keys[0], gid, *keys[1:], raw)
    u = np.empty(gid.size)
    z = np.empty(gid.size)
    backend.uniform(keys[0], gid, *keys[1:], u)
    backend.normal(keys[0], gid, *keys[1:], z)
    tables = np_rng.ziggurat_tables()
    fast, zfast = _fast_path(tables, raw[:, 0])
    assert 0.97 < fast.mean() < 1.0
    for k in range(gid.size):
        w0 = int(raw[k, 0])
        assert u[k] == (w0 >> 11) * 2.0**-53  # exact
        zz, _, path = ref_normal(keys[0], int(gid.view(np.uint64)[k]), *keys[1:], tables)
        assert (path == "fast") == fast[k]
        if fast[k]:
            assert z[k] == zfast[k] == zz  # exact: +-rabs * wi[idx]
        else:
            assert z[k] == pytest.approx(zz, rel=1e-12, abs=0)
    assert np.all((u >= 0.0) & (u < 1.0))
    np.testing.assert_array_equal(u * 2.0**53, np.floor(u * 2.0**53))  # multiples of 2**-53
    assert np.all(np.isfinite(z))


@pytest.mark.parametrize("backend", BACKENDS)
def test_statistics(backend):
    n = 1_000_000
    gid = np.arange(n, dtype=np.int64)
    u = np.empty(n)
    z = np.empty(n)
    backend.uniform(20240601, gid, 3, 1, 0, u)
    backend.normal(20240601, gid, 3, 2, 0, z)
    # Tolerances: about 5 standard errors of each estimate.
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / n)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / n)
    # Third and fourth moments of a standard normal: 0 and 3.
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96 / n)
    # Each decile of the uniforms holds 10 % of the draws (binomial, 5 sigma).
    counts = np.bincount((u * 10).astype(np.int64), minlength=10)
    assert np.all(np.abs(counts - n / 10) < 5 * math.sqrt(n * 0.1 * 0.9))


@pytest.mark.parametrize("backend", BACKENDS)
def test_different_keys_give_different_streams(backend):
    gid = np.arange(2000, dtype=np.int64)
    base = (1, 2, 3, 4)  # seed, tick, stream, draw
    variants = [
        (2, 2, 3, 4),  # seed
        (1, 3, 3, 4),  # tick
        (1, 2, 4, 4),  # stream
        (1, 2, 3, 5),  # draw
        (1, 4, 3, 2),  # tick and draw swapped
        (3, 2, 1, 4),  # seed and stream swapped
        (1, 2, 3, 4 + (1 << 32)),
    ]
    ref = _raw(backend, base[0], gid, *base[1:])
    outs = [ref]
    for v in variants:
        out = _raw(backend, v[0], gid, *v[1:])
        # 64-bit words collide by chance with probability ~2**-64 each.
        assert not np.any(out == ref)
        outs.append(out)
    # Also no two gids (nor any variant) share a word 0.
    allw0 = np.concatenate([o[:, 0] for o in outs])
    assert np.unique(allw0).size == allw0.size
    # Negative gids are distinct ids, not aliases of positive ones.
    neg = _raw(backend, base[0], -gid - 1, *base[1:])
    assert not np.any(neg == ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pure_function_of_keys(backend):
    rs = np.random.default_rng(3)
    gid = rs.integers(-(10**12), 10**12, size=3000, dtype=np.int64)
    keys = (77, 12, 5, 0)
    out = _raw(backend, keys[0], gid.view(np.uint64), *keys[1:])
    # Same inputs, same outputs.
    np.testing.assert_array_equal(out, _raw(backend, keys[0], gid.view(np.uint64), *keys[1:]))
    # Order of the gids is irrelevant: out[i] depends only on gid[i].
    perm = rs.permutation(gid.size)
    np.testing.assert_array_equal(
        _raw(backend, keys[0], gid[perm].view(np.uint64), *keys[1:]), out[perm]
    )
    # Any subset (e.g. the agents one rank owns) gives the same rows.
    sub = np.sort(rs.choice(gid.size, 100, replace=False))
    np.testing.assert_array_equal(
        _raw(backend, keys[0], gid[sub].view(np.uint64), *keys[1:]), out[sub]
    )
    for i in (0, 1, gid.size - 1):
        np.testing.assert_array_equal(
            _raw(backend, keys[0], gid[i : i + 1].view(np.uint64), *keys[1:]), out[i : i + 1]
        )
    # Duplicated gids give duplicated rows.
    dup = np.repeat(gid[:5], 3)
    np.testing.assert_array_equal(
        _raw(backend, keys[0], dup.view(np.uint64), *keys[1:]), np.repeat(out[:5], 3, axis=0)
    )
    # Strided (non-contiguous) gid arrays are read correctly.
    u_strided = np.empty(gid.size // 2)
    u_contig = np.empty(gid.size // 2)
    backend.uniform(keys[0], gid[::2], *keys[1:], u_strided)
    backend.uniform(keys[0], np.ascontiguousarray(gid[::2]), *keys[1:], u_contig)
    np.testing.assert_array_equal(u_strided, u_contig)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_arguments(backend):
    gid = np.arange(5, dtype=np.int64)
    with pytest.raises(ValueError):
        backend.random_raw(0, gid, 0, 0, 0, np.empty((4, 4), dtype=np.uint64))
    with pytest.raises(ValueError):
        backend.uniform(0, gid, 0, 0, 0, np.empty(6))
    with pytest.raises(ValueError):
        backend.normal(0, gid, 0, 0, 0, np.empty(4))
    with pytest.raises(OverflowError):
        backend.uniform(-1, gid, 0, 0, 0, np.empty(5))
    with pytest.raises(OverflowError):
        backend.uniform(0, gid, 1 << 64, 0, 0, np.empty(5))


def test_ziggurat_tables_cython_equal_twin_bit_for_bit():
    ki_c, wi_c, fi_c = cy_rng.ziggurat_tables()
    ki_n, wi_n, fi_n = np_rng.ziggurat_tables()
    assert ki_c.dtype == ki_n.dtype == np.uint64
    assert wi_c.dtype == wi_n.dtype == fi_c.dtype == fi_n.dtype == np.float64
    np.testing.assert_array_equal(ki_c, ki_n)
    np.testing.assert_array_equal(wi_c.view(np.uint64), wi_n.view(np.uint64))
    np.testing.assert_array_equal(fi_c.view(np.uint64), fi_n.view(np.uint64))
    # The kernel returns copies; the twin's cached tables are read-only.
    ki_c[0] = 0
    assert cy_rng.ziggurat_tables()[0][0] == ki_n[0] != 0
    assert not ki_n.flags.writeable and not wi_n.flags.writeable


def test_ziggurat_tables_geometry():
    ki, wi, fi = np_rng.ziggurat_tables()
    r, v = np_rng.ZIG_R, np_rng.ZIG_V
    assert ki.shape == wi.shape == fi.shape == (256,)
    x = wi * 2.0**52  # layer right edges x_i (i >= 1); q for the base strip
    assert x[255] == r and fi[0] == 1.0 and ki[1] == 0
    assert fi[255] == pytest.approx(math.exp(-0.5 * r * r), rel=1e-15)
    assert x[0] == pytest.approx(v / math.exp(-0.5 * r * r), rel=1e-15)
    assert np.all(np.diff(x[1:]) > 0) and np.all(np.diff(fi) < 0)
    np.testing.assert_allclose(fi[1:], np.exp(-0.5 * x[1:] ** 2), rtol=1e-14)
    # Every layer i >= 1 has area V: x_i (f(x_{i-1}) - f(x_i)); the top one
    # (f(x_0) = 1) only up to ~1e-9, as R and V close the recurrence at
    # f(x_0) = 1 + 2e-11.
    np.testing.assert_allclose(x[2:] * (fi[1:-1] - fi[2:]), v, rtol=1e-12)
    assert x[1] * (1.0 - fi[1]) == pytest.approx(v, rel=2e-9)
    # ki[i] = floor(x_{i-1} / x_i * 2**52) (and R / q for the base strip).
    ratio = np.concatenate(([r / x[0], 0.0], x[1:-1] / x[2:]))
    np.testing.assert_allclose(ki.astype(np.float64), ratio * 2.0**52, rtol=1e-14, atol=1.0)
    assert np.all(ki < 2**52)
    # numpy's own 256-layer tables (ziggurat_constants.h) agree to ~1e-10.
    assert int(ki[0]) == pytest.approx(0x000EF33D8025EF6A, rel=1e-9)
    assert wi[1] == pytest.approx(4.77933017572773682428e-17, rel=1e-9)
    assert fi[1] == pytest.approx(9.77101701267671596263e-01, rel=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_normal_distribution(backend):
    n = 2_000_000
    gid = np.arange(n, dtype=np.int64)
    z = np.empty(n)
    backend.normal(987654321, gid, 11, 7, 0, z)
    assert np.all(np.isfinite(z))
    # Tolerances: about 5 standard errors of each estimate.
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(z)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # Tails (binomial counts within 5 sigma), beyond R = 3.654 the tail path.
    for c in (1.0, 2.0, 3.0, np_rng.ZIG_R, 4.0):
        p = 2 * stats.norm.sf(c)
        count = np.count_nonzero(np.abs(z) > c)
        assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)), c
    # Both signs in the tails, and the layers' wedges reach the whole range.
    assert np.count_nonzero(z > 4.0) > 20 and np.count_nonzero(z < -4.0) > 20
    # A chi-square over 200 equiprobable bins catches a mis-sized layer.
    edges = stats.norm.ppf(np.linspace(0, 1, 201))
    counts = np.histogram(z, bins=edges)[0]
    assert stats.chisquare(counts).pvalue > 1e-3


def _slow_gids(seed, tick, stream, draw, n, start=0):
    """Gids in [start, start + n) whose word 0 misses the fast path."""
    gid = np.arange(start, start + n, dtype=np.int64)
    raw = _raw(cy_rng, seed, gid.view(np.uint64), tick, stream, draw)
    fast, _ = _fast_path(np_rng.ziggurat_tables(), raw[:, 0])
    return gid[~fast], raw[~fast]


def test_normal_slow_paths_twin_equal_cython_and_reference():
    keys = (31337, 9, 1, 0)  # seed, tick, stream, draw
    gid, raw = _slow_gids(*keys, 1 << 20)
    tables = np_rng.ziggurat_tables()
    idx = raw[:, 0] & np.uint64(0xFF)
    # 1.49 % of the words miss the fast path (mean of 1 - ki / 2**52), 0.026 % in layer 0.
    assert 0.013 < gid.size / (1 << 20) < 0.017
    assert np.count_nonzero(idx == 0) > 100
    z_c = _normal(cy_rng, keys[0], gid.view(np.uint64), *keys[1:])
    z_n = _normal(np_rng, keys[0], gid.view(np.uint64), *keys[1:])
    np.testing.assert_allclose(z_c, z_n, rtol=1e-12, atol=0)
    paths, nwords = [], []
    for g, zc in zip(gid.view(np.uint64), z_c, strict=True):
        zr, k, path = ref_normal(keys[0], int(g), *keys[1:], tables)
        assert zc == pytest.approx(zr, rel=1e-12, abs=0)
        paths.append(path)
        nwords.append(k)
    paths, nwords = np.array(paths), np.array(nwords)
    # Every slow path is exercised, including ones that read past the first
    # block (counter word 3 = 1, 2, ...).
    assert np.count_nonzero(paths == "tail") > 100
    assert np.count_nonzero(paths == "wedge") > 1000
    assert np.count_nonzero(paths == "fast") == 0
    assert np.count_nonzero(nwords > 4) >= 5
    tail = paths == "tail"
    assert np.all(np.abs(z_c[tail]) > np_rng.ZIG_R)
    assert np.all(np.abs(z_c[~tail]) <= np_rng.ZIG_R)
    # The entries that needed the later blocks, alone and in any order.
    late = gid[nwords > 4]
    for backend in BACKENDS:
        mod = backend.values[0]
        sub = _normal(mod, keys[0], late[::-1].view(np.uint64), *keys[1:])
        np.testing.assert_array_equal(sub, z_c[nwords > 4][::-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_normal_pure_function_of_keys(backend):
    keys = (424242, 3, 1, 0)  # seed, tick, stream, draw
    slow, _ = _slow_gids(*keys, 20_000)
    rs = np.random.default_rng(8)
    gid = np.concatenate([rs.integers(-(10**12), 10**12, size=3000, dtype=np.int64), slow])
    gid = gid[rs.permutation(gid.size)]
    z = np.empty(gid.size)
    backend.normal(keys[0], gid, *keys[1:], z)
    again = np.empty(gid.size)
    backend.normal(keys[0], gid, *keys[1:], again)
    np.testing.assert_array_equal(again, z)
    # out[i] depends only on gid[i]: permutations, subsets, single gids,
    # duplicates and strided arrays give the same values.
    perm = rs.permutation(gid.size)
    out = np.empty(gid.size)
    backend.normal(keys[0], gid[perm], *keys[1:], out)
    np.testing.assert_array_equal(out, z[perm])
    for i in (0, 1, gid.size - 1):
        one = np.empty(1)
        backend.normal(keys[0], gid[i : i + 1], *keys[1:], one)
        assert one[0] == z[i]
    dup = np.repeat(gid[:7], 3)
    out = np.empty(dup.size)
    backend.normal(keys[0], dup, *keys[1:], out)
    np.testing.assert_array_equal(out, np.repeat(z[:7], 3))
    out = np.empty(gid[::2].size)
    backend.normal(keys[0], gid[::2], *keys[1:], out)
    np.testing.assert_array_equal(out, z[::2])
    # Any other key gives other numbers (equal by chance with probability
    # ~1e-2 per entry only through a shared signed layer value: none here).
    for seed, tick, stream, draw in [
        (keys[0] + 1, *keys[1:]),
        (keys[0], keys[1] + 1, *keys[2:]),
        (keys[0], keys[1], keys[2] + 1, keys[3]),
        (keys[0], keys[1], keys[2], keys[3] + 1),
        (keys[0], keys[1], keys[2], keys[3] + (1 << 32)),
    ]:
        other = np.empty(gid.size)
        backend.normal(seed, gid, tick, stream, draw, other)
        assert not np.any(other == z)


def test_normal_slow_blocks_do_not_collide_with_other_draws():
    # The extra blocks of a normal (counter word 3 = j >= 1) are blocks that
    # no raw/uniform/normal call of any draw reads first (word 3 = 0 there).
    keys = (5, 6, 7, 8)  # seed, tick, stream, draw
    gid, _ = _slow_gids(*keys, 4096)
    g = int(gid.view(np.uint64)[0])
    extra = ref_philox((g, keys[1], keys[3], 1), (keys[0], keys[2]))
    for draw in range(0, 64):
        first = _raw(cy_rng, keys[0], [g], keys[1], keys[2], draw)[0]
        assert not set(int(v) for v in first) & set(extra)


# --- normal4: four ticks to a Philox block ------------------------------------

def _normal4_pair(seed, gid, tick, stream=1, draw=0):
    from tokensim_hpc._kernels import rng as c_rng
    from tokensim_hpc.numpy_kernels import rng as n_rng

    words = np.empty((gid.shape[0], 4), dtype=np.uint64)
    c_rng.random_raw(seed, gid, tick >> 2, stream, draw, words)
    a = np.empty(gid.shape[0])
    b = np.empty(gid.shape[0])
    c_rng.normal4(seed, gid, tick, stream, draw, words, a)
    n_rng.normal4(seed, gid, tick, stream, draw, words, b)
    return a, b, words


@pytest.mark.parametrize("tick", [0, 1, 2, 3, 4, 7, 2**40 + 5])
def test_normal4_twin_equal_including_slow_paths(tick):
    gid = np.arange(0, 300_000, 3, dtype=np.int64)
    a, b, words = _normal4_pair(11, gid, tick)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    # The slow paths (first word not accepted) are exercised and agree too.
    from tokensim_hpc.numpy_kernels.rng import _zig_first

    _, fast = _zig_first(words[:, tick & 3])
    assert (~fast).sum() > 500
    np.testing.assert_allclose(a[~fast], b[~fast], rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", [0, 1])
def test_normal4_empty_and_single(n):
    a, b, _ = _normal4_pair(3, np.arange(n, dtype=np.int64), 5)
    assert a.shape == (n,) and np.array_equal(a, b)


def test_normal4_distribution_and_lane_independence():
    from scipy import stats

    gid = np.arange(1_000_000, dtype=np.int64)
    lanes = [_normal4_pair(7, gid, t)[0] for t in (8, 9, 10, 11)]  # one block, four lanes
    for x in lanes:
        assert abs(x.mean()) < 5e-3 and abs(x.var() - 1) < 5e-3
        assert stats.kstest(x, "norm").pvalue > 1e-3
        tail = np.mean(np.abs(x) > 3.0)
        assert abs(tail - 2 * stats.norm.sf(3.0)) < 5 * np.sqrt(2 * stats.norm.sf(3.0) / x.size)
    corr = np.corrcoef(lanes)
    assert np.max(np.abs(corr - np.eye(4))) < 5e-3
    # Consecutive blocks differ: tick 12 is a new block.
    assert not np.array_equal(_normal4_pair(7, gid[:100], 12)[0], lanes[0][:100])


def test_normal4_is_a_pure_function_of_its_keys():
    gid = np.arange(5000, dtype=np.int64)
    a, _, _ = _normal4_pair(2, gid, 6)
    perm = np.random.default_rng(0).permutation(gid.size)
    b, _, _ = _normal4_pair(2, gid[perm], 6)
    assert np.array_equal(a[perm], b)
    for other in ((3, 6, 1, 0), (2, 7, 1, 0), (2, 6, 2, 0), (2, 6, 1, 1)):
        c, _, _ = _normal4_pair(other[0], gid, other[1], other[2], other[3])
        assert np.mean(c == a) < 0.01



@pytest.mark.parametrize("n", [0, 1, 1000])
def test_random_raw_lanes_is_random_raw_transposed(n):
    gid = np.arange(n, dtype=np.int64) * 5 + 1
    blocks = np.empty((n, 4), dtype=np.uint64)
    cy_rng.random_raw(4, gid, 9, 2, 0, blocks)
    for mod in (cy_rng, np_rng):
        lanes = np.empty((4, n), dtype=np.uint64)
        mod.random_raw_lanes(4, gid, 9, 2, 0, lanes)
        assert np.array_equal(lanes, blocks.T)
