"""Numpy twin of ``tokensim_hpc._kernels.rng``: Philox4x64-10 random numbers.

Same functions, arguments and results as the Cython kernel (see
``cython_kernels/_philox.pxd`` for the algorithm and the keying):

    key = (seed, stream), counter = (gid, tick, draw, 0), all uint64.

`random_raw` and `uniform` are bit-identical to the kernel. `normal` (a
256-layer Ziggurat) is bit-identical on its fast path and on the wedge path;
the rare tail path uses numpy's ``log1p`` where the kernel uses the C
library's, and the wedge test compares with numpy's ``exp``, so results
agree with the kernel to a relative 1e-12 (in practice bit for bit).

Everything is vectorized over the gids with uint64 arrays. Numpy has no
64x64 -> 128-bit multiply, so the high word of each product is assembled
from 32-bit halves (`_mulhilo`).

This module also computes the Ziggurat tables (`ziggurat_tables`) that are
hard-coded in ``_philox.pxd``; `_ziggurat_c_source` prints them as C.
"""

import functools
from decimal import Decimal, localcontext

import numpy as np

__all__ = ["random_raw", "random_raw_lanes", "uniform", "normal", "normal4", "ziggurat_tables"]

_U64 = (1 << 64) - 1
_M0 = 0xD2E7470EE14C6C93
_M1 = 0xCA5A826395121157
_W0 = 0x9E3779B97F4A7C15
_W1 = 0xBB67AE8584CAA73B
_ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_SH11 = np.uint64(11)
_SH8 = np.uint64(8)
_SH9 = np.uint64(9)
_ONE = np.uint64(1)
_THREE = np.uint64(3)
_MANT = np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 2.0**-53
# Blocks per pass: keeps the ~20 uint64 temporaries of a round in cache.
_BLOCK = 1 << 15

# Ziggurat for the standard normal (Marsaglia and Tsang 2000, in the
# 256-layer, 52-bit form of numpy's ``random_standard_normal``): the layers'
# common area V and the right edge R of the base strip. The tables are a
# function of these two doubles only (`ziggurat_tables`).
ZIG_LAYERS = 256
ZIG_R = 3.6541528853610088
ZIG_V = 0.00492867323399


def _u64(name, value):
    """Return ``value`` as a Python int, checked to lie in [0, 2**64).

    The Cython kernel converts its scalar arguments to ``uint64_t`` and
    raises OverflowError outside this range; the twin does the same.
    """
    v = int(value)
    if not 0 <= v <= _U64:
        raise OverflowError(f"{name}={v} is not in [0, 2**64)")
    return v


def _mulhilo(m, b):
    """Low and high 64-bit words of the 128-bit product ``m * b``.

    Parameters
    ----------
    m : int
        The constant multiplier, in [0, 2**64).
    b : ndarray of uint64
        The other factor.

    Returns
    -------
    lo, hi : ndarray of uint64
    """
    # Schoolbook product on 32-bit halves: with m = mh*2**32 + ml and
    # b = bh*2**32 + bl every partial product is < 2**64, so none wraps.
    ml = np.uint64(m & 0xFFFFFFFF)
    mh = np.uint64(m >> 32)
    bl = b & _MASK32
    bh = b >> _SH32
    ll = bl * ml
    lh = bl * mh
    hl = bh * ml
    hh = bh * mh
    # Bits 32..95 of the product: the carry out of the middle column is
    # (ll >> 32) + low halves of the two cross products, < 3 * 2**32.
    mid = (ll >> _SH32) + (lh & _MASK32) + (hl & _MASK32)
    hi = hh + (lh >> _SH32) + (hl >> _SH32) + (mid >> _SH32)
    # The low word is the product modulo 2**64: numpy's uint64 array
    # multiply wraps silently, exactly like C.
    lo = b * np.uint64(m)
    return lo, hi


def _philox_block(seed, gid_u64, tick, stream, draw, retry=None):
    """Philox4x64-10 blocks for a 1-D uint64 array of gids (no chunking).

    Counter word 3 is ``retry`` (a uint64 array like ``gid_u64``), or 0 for
    every block when it is None (`random_raw`, `uniform` and the first block
    of `normal`). Returns the four output words as a tuple of uint64 arrays.
    """
    n = gid_u64.shape[0]
    c0 = gid_u64
    c1 = np.full(n, tick, dtype=np.uint64)
    c2 = np.full(n, draw, dtype=np.uint64)
    c3 = np.zeros(n, dtype=np.uint64) if retry is None else retry
    for r in range(_ROUNDS):
        # Key schedule in Python ints (exact), reduced modulo 2**64.
        k0 = np.uint64((seed + r * _W0) & _U64)
        k1 = np.uint64((stream + r * _W1) & _U64)
        lo0, hi0 = _mulhilo(_M0, c0)
        lo1, hi1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _keys(seed, gid, tick, stream, draw):
    """Checked scalar keys and the gids as a 1-D uint64 array."""
    keys = (_u64("seed", seed), _u64("tick", tick), _u64("stream", stream), _u64("draw", draw))
    # int64 global ids reinterpreted as uint64 (two's complement), like the
    # C cast <uint64_t>gid[i].
    g = np.asarray(gid, dtype=np.int64).view(np.uint64)
    if g.ndim != 1:
        raise ValueError("gid must be one-dimensional")
    return keys, g


def _blocks(seed, gid, tick, stream, draw):
    """Yield ``(slice, words)`` over blocks of ``_BLOCK`` gids."""
    (seed, tick, stream, draw), g = _keys(seed, gid, tick, stream, draw)
    for start in range(0, g.shape[0], _BLOCK):
        sl = slice(start, min(start + _BLOCK, g.shape[0]))
        yield sl, _philox_block(seed, g[sl], tick, stream, draw)


def _check_len(out, n):
    if out.ndim != 1 or out.shape[0] != n:
        raise ValueError(f"out must have length {n}, got shape {out.shape}")


def random_raw(seed, gid, tick, stream, draw, out):
    """Raw Philox4x64-10 output words, one block per gid.

    Parameters
    ----------
    seed : int
        Simulation seed, in [0, 2**64); key word 0.
    gid : ndarray of int64, shape (n,)
        Agent global ids; counter word 0 (reinterpreted as uint64).
    tick : int
        Time step, in [0, 2**64); counter word 1.
    stream : int
        Purpose of the numbers, in [0, 2**64); key word 1.
    draw : int
        Index of the draw within (tick, stream), in [0, 2**64); counter word 2.
    out : ndarray of uint64, shape (n, 4)
        Receives the four output words of each block.

    Raises
    ------
    ValueError
        If ``out`` does not have shape (len(gid), 4).
    """
    n = np.shape(gid)[0]
    if out.shape != (n, 4):
        raise ValueError(f"out must have shape ({n}, 4), got {out.shape}")
    for sl, words in _blocks(seed, gid, tick, stream, draw):
        for k in range(4):
            out[sl, k] = words[k]


def uniform(seed, gid, tick, stream, draw, out):
    """Uniform doubles in [0, 1), one per gid: ``(w0 >> 11) * 2**-53``.

    Parameters
    ----------
    seed, gid, tick, stream, draw
        As in `random_raw`.
    out : ndarray of float64, shape (n,)
        Receives the numbers.

    Raises
    ------
    ValueError
        If ``len(out) != len(gid)``.
    """
    _check_len(out, np.shape(gid)[0])
    for sl, (w0, _, _, _) in _blocks(seed, gid, tick, stream, draw):
        # w0 >> 11 < 2**53 converts to float64 exactly; times 2**-53 is exact.
        out[sl] = (w0 >> _SH11).astype(np.float64) * _TWO_M53


def normal(seed, gid, tick, stream, draw, out):
    """Standard normal doubles by a 256-layer Ziggurat, one per gid.

    The algorithm and the words it reads are those of ``philox_normal`` in
    ``_philox.pxd``: word 0 of the block of counter (gid, tick, draw, 0)
    gives the number in 98.5 % of the cases (`_zig_first`); the other
    entries continue in `_zig_slow` with the following words of the
    sequence (words 1..3 of that block, then the blocks of counter
    (gid, tick, draw, j), j = 1, 2, ...).

    Parameters
    ----------
    seed, gid, tick, stream, draw
        As in `random_raw`.
    out : ndarray of float64, shape (n,)
        Receives the numbers.

    Raises
    ------
    ValueError
        If ``len(out) != len(gid)``.
    """
    _check_len(out, np.shape(gid)[0])
    (seed, tick, stream, draw), g = _keys(seed, gid, tick, stream, draw)
    for start in range(0, g.shape[0], _BLOCK):
        sl = slice(start, min(start + _BLOCK, g.shape[0]))
        words = _philox_block(seed, g[sl], tick, stream, draw)
        x, done = _zig_first(words[0])
        miss = np.flatnonzero(~done)
        if miss.size:
            x[miss] = _zig_slow(seed, g[sl][miss], tick, stream, draw, [w[miss] for w in words])
        out[sl] = x


def random_raw_lanes(seed, gid, tick, stream, draw, out):
    """Numpy twin of ``rng.random_raw_lanes``: `random_raw` stored as (4, n)."""
    n = np.shape(gid)[0]
    if out.shape != (4, n):
        raise ValueError(f"out must have shape (4, {n}), got {out.shape}")
    words = np.empty((n, 4), dtype=np.uint64)
    random_raw(seed, gid, tick, stream, draw, words)
    out[...] = words.T


def normal4(seed, gid, tick, stream, draw, words, out):
    """Numpy twin of ``rng.normal4``: normals four ticks to a Philox block.

    Word tick & 3 of ``words`` (the block of counter (gid, tick >> 2, draw,
    0)) starts the Ziggurat; entries not accepted at once continue with the
    words of the blocks of counter (gid, tick >> 2, draw, 1 + lane + 4 j),
    lane = tick & 3 (see ``philox_normal4`` in ``_philox.pxd``).
    """
    n = np.shape(gid)[0]
    _check_len(out, n)
    words = np.asarray(words, dtype=np.uint64)
    if words.shape != (n, 4):
        raise ValueError(f"words must have shape ({n}, 4), got {words.shape}")
    (seed, tick, stream, draw), g = _keys(seed, gid, tick, stream, draw)
    lane = tick & 3
    first = words[:, lane]
    x, done = _zig_first(first)
    miss = np.flatnonzero(~done)
    if miss.size:
        retry0 = np.full(miss.size, 1 + lane, dtype=np.uint64)
        block0 = _philox_block(seed, g[miss], tick >> 2, stream, draw, retry=retry0)
        x[miss] = _zig_slow(seed, g[miss], tick >> 2, stream, draw, list(block0),
                            first=first[miss], k0=0, retry_base=1 + lane, retry_step=4)
    out[:] = x


def _zig_decode(w):
    """Split Ziggurat words: layer (bits 0-7), sign (bit 8), 52-bit rabs (9-60)."""
    idx = (w & np.uint64(0xFF)).astype(np.intp)
    sign = ((w >> _SH8) & _ONE).astype(bool)
    rabs = (w >> _SH9) & _MANT
    return idx, sign, rabs


def _zig_first(w):
    """Candidate ``x = +-rabs * wi[idx]`` of each word and whether it is accepted.

    Accepted (``rabs < ki[idx]``: x lies in the part of layer idx that is
    under the density) is the final value; the others need `_zig_slow`.
    """
    ki, wi, _ = ziggurat_tables()
    idx, sign, rabs = _zig_decode(w)
    # rabs < 2**52 converts exactly; -x flips the sign bit only, as in C.
    x = rabs.astype(np.float64) * wi[idx]
    x = np.where(sign, -x, x)
    return x, rabs < ki[idx]


def _zig_slow(seed, g, tick, stream, draw, block0, first=None, k0=1, retry_base=0,
              retry_step=1):
    """Ziggurat values of the gids ``g`` whose word 0 was not accepted.

    ``block0`` holds the four words of their blocks of counter
    (gid, tick, draw, 0). Each entry walks the word sequence
    ``S[k] = word k % 4 of the block of counter (gid, tick, draw, k // 4)``
    from k = 1 on, exactly as the kernel's ``philox_normal_slow``; the
    entries still undecided shrink at every pass.
    """
    _, _, fi = ziggurat_tables()
    m = g.shape[0]
    res = np.empty(m)
    k = np.full(m, k0, dtype=np.uint64)  # index of each entry's next word

    def next_word(sel):
        # Word k of the entries ``sel`` (indices into g), then k += 1; block
        # j = k // 4 has counter word 3 = retry_base + retry_step * j.
        kk = k[sel]
        j = kk >> np.uint64(2)
        words = [w[sel] for w in block0]
        later = np.flatnonzero(j != 0)
        if later.size:
            retry = np.uint64(retry_base) + np.uint64(retry_step) * j[later]
            fresh = _philox_block(seed, g[sel][later], tick, stream, draw, retry=retry)
            for w, f in zip(words, fresh, strict=True):
                w[later] = f
        k[sel] = kk + _ONE
        return np.choose((kk & _THREE).astype(np.intp), words)

    def next_uniform(sel):
        return (next_word(sel) >> _SH11).astype(np.float64) * _TWO_M53

    todo = np.arange(m)  # entries whose current word is w
    w = block0[0] if first is None else first
    while todo.size:
        x, done = _zig_first(w)
        res[todo[done]] = x[done]
        idx, sign, _ = _zig_decode(w)
        # Base strip beyond R: the tail x > R, sampled by Marsaglia's
        # exponential rejection until accepted (never restarts the Ziggurat).
        tail = np.flatnonzero(~done & (idx == 0))
        ent, neg = todo[tail], sign[tail]
        while ent.size:
            u1 = next_uniform(ent)
            u2 = next_uniform(ent)
            # log1p(-u) with u in [0, 1) is finite.
            xx = -np.log1p(-u1) / ZIG_R
            yy = -np.log1p(-u2)
            ok = yy + yy > xx * xx
            t = ZIG_R + xx
            res[ent[ok]] = np.where(neg[ok], -t[ok], t[ok])
            ent, neg = ent[~ok], neg[~ok]
        # Wedges of layers 1..255: accept x if a uniform height in the layer
        # lies under the density, else start over with the next word.
        wedge = np.flatnonzero(~done & (idx != 0))
        ent, wi_, xw = todo[wedge], idx[wedge], x[wedge]
        u = next_uniform(ent)
        ok = (fi[wi_ - 1] - fi[wi_]) * u + fi[wi_] < np.exp(-0.5 * xw * xw)
        res[ent[ok]] = xw[ok]
        todo = ent[~ok]
        w = next_word(todo)
    return res


@functools.cache
def ziggurat_tables():
    """The Ziggurat tables ``(ki, wi, fi)`` of `normal`, 256 entries each.

    Layers i = 1..255 are the rectangles [0, x_i] x [f(x_i), f(x_{i-1})]
    under f(x) = exp(-x**2 / 2), with x_0 = 0 < x_1 < ... < x_255 = R and
    x_i (f(x_{i-1}) - f(x_i)) = V, i.e. the recurrence

        x_i = sqrt(-2 log(V / x_{i+1} + f(x_{i+1}))),  i = 254, ..., 1;

    layer 0 is the base strip [0, R] x [0, f(R)] plus the tail x > R, of
    the same area V, handled as a rectangle of width q = V / f(R). Then

        ki[0] = floor(R / q * 2**52), ki[1] = 0,
        ki[i] = floor(x_{i-1} / x_i * 2**52)           (uint64),
        wi[0] = q * 2**-52,  wi[i] = x_i * 2**-52      (float64),
        fi[0] = 1,           fi[i] = f(x_i)            (float64).

    R and V are the doubles `ZIG_R` and `ZIG_V`. The recurrence runs in
    50-digit decimal arithmetic (correctly rounded exp, ln and sqrt), and
    each entry is rounded once (floats) or truncated (ki), so the tables do
    not depend on the platform's libm. ``_philox.pxd`` holds the same
    values as C literals; tests/test_rng.py checks that they are equal bit
    for bit. The arrays are read-only.
    """
    n = ZIG_LAYERS
    with localcontext() as ctx:
        ctx.prec = 50
        r, v = Decimal(ZIG_R), Decimal(ZIG_V)
        scale = Decimal(2**52)

        def f(x):
            return (-x * x / 2).exp()

        x = [Decimal(0)] * n
        x[n - 1] = r
        for i in range(n - 2, 0, -1):
            x[i] = (-2 * (v / x[i + 1] + f(x[i + 1])).ln()).sqrt()
        q = v / f(r)
        ki = [int(r / q * scale), 0] + [int(x[i - 1] / x[i] * scale) for i in range(2, n)]
        wi = [float(q / scale)] + [float(x[i] / scale) for i in range(1, n)]
        fi = [1.0] + [float(f(x[i])) for i in range(1, n)]
    tables = (np.array(ki, dtype=np.uint64), np.array(wi), np.array(fi))
    for t in tables:
        t.flags.writeable = False
    return tables


def _ziggurat_c_source():
    """The C definitions of the tables for ``_philox.pxd`` (hex literals).

    Regenerate with ``python -c "from tokensim_hpc.numpy_kernels.rng import
    _ziggurat_c_source as s; print(s())"`` after changing `ZIG_R` or `ZIG_V`.
    """
    ki, wi, fi = ziggurat_tables()
    lines = []

    def table(ctype, name, items, per_line):
        lines.append(f"    static const {ctype} {name}[{ZIG_LAYERS}] = {{")
        for i in range(0, len(items), per_line):
            lines.append("        " + ", ".join(items[i : i + per_line]) + ",")
        lines.append("    };")

    table("uint64_t", "tokensim_zig_ki", [f"0x{int(v):013X}ull" for v in ki], 4)
    table("double", "tokensim_zig_wi", [float(v).hex() for v in wi], 4)
    table("double", "tokensim_zig_fi", [float(v).hex() for v in fi], 4)
    lines.append(f"    #define TOKENSIM_ZIG_R {ZIG_R.hex()}  /* {ZIG_R!r} */")
    return "\n".join(lines)
