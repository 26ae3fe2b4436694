"""Tests of the Philox4x64-10 random numbers (Cython kernel and numpy twin).

Keying: key = (seed, stream), counter = (gid, tick, draw, 0).
"""

import math

import numpy as np
import pytest

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
    for k in range(gid.size):
        w0, w1 = int(raw[k, 0]), int(raw[k, 1])
        assert u[k] == (w0 >> 11) * 2.0**-53  # exact
        u1 = ((w0 >> 11) + 1) * 2.0**-53
        u2 = (w1 >> 11) * 2.0**-53
        zz = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        assert z[k] == pytest.approx(zz, rel=1e-12, abs=1e-300)
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
