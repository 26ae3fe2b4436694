"""Numpy twin of ``tokensim_hpc._kernels.rng``: Philox4x64-10 random numbers.

Same functions, arguments and results as the Cython kernel (see
``cython_kernels/_philox.pxd`` for the algorithm and the keying):

    key = (seed, stream), counter = (gid, tick, draw, 0), all uint64.

`random_raw` and `uniform` are bit-identical to the kernel. `normal` uses
numpy's ``log`` and ``cos``, which may differ from the C library's by an ulp,
so it agrees with the kernel to a relative 1e-12, not bit for bit.

Everything is vectorized over the gids with uint64 arrays. Numpy has no
64x64 -> 128-bit multiply, so the high word of each product is assembled
from 32-bit halves (`_mulhilo`).
"""

import numpy as np

__all__ = ["random_raw", "uniform", "normal"]

_U64 = (1 << 64) - 1
_M0 = 0xD2E7470EE14C6C93
_M1 = 0xCA5A826395121157
_W0 = 0x9E3779B97F4A7C15
_W1 = 0xBB67AE8584CAA73B
_ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_SH11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53
# Blocks per pass: keeps the ~20 uint64 temporaries of a round in cache.
_BLOCK = 1 << 15


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


def _philox_block(seed, gid_u64, tick, stream, draw):
    """Philox4x64-10 blocks for a 1-D uint64 array of gids (no chunking).

    Returns the four output words as a tuple of uint64 arrays.
    """
    n = gid_u64.shape[0]
    c0 = gid_u64
    c1 = np.full(n, tick, dtype=np.uint64)
    c2 = np.full(n, draw, dtype=np.uint64)
    c3 = np.zeros(n, dtype=np.uint64)
    for r in range(_ROUNDS):
        # Key schedule in Python ints (exact), reduced modulo 2**64.
        k0 = np.uint64((seed + r * _W0) & _U64)
        k1 = np.uint64((stream + r * _W1) & _U64)
        lo0, hi0 = _mulhilo(_M0, c0)
        lo1, hi1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _blocks(seed, gid, tick, stream, draw):
    """Yield ``(slice, words)`` over blocks of ``_BLOCK`` gids."""
    seed = _u64("seed", seed)
    tick = _u64("tick", tick)
    stream = _u64("stream", stream)
    draw = _u64("draw", draw)
    # int64 global ids reinterpreted as uint64 (two's complement), like the
    # C cast <uint64_t>gid[i].
    g = np.asarray(gid, dtype=np.int64).view(np.uint64)
    if g.ndim != 1:
        raise ValueError("gid must be one-dimensional")
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
    """Standard normal doubles by Box-Muller, one per gid.

    ``u1 = ((w0 >> 11) + 1) * 2**-53`` in (0, 1], ``u2 = (w1 >> 11) * 2**-53``
    in [0, 1), ``z = sqrt(-2 log u1) * cos(2 pi u2)``.

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
    for sl, (w0, w1, _, _) in _blocks(seed, gid, tick, stream, draw):
        u1 = ((w0 >> _SH11) + _ONE).astype(np.float64) * _TWO_M53
        u2 = (w1 >> _SH11).astype(np.float64) * _TWO_M53
        # Same operation order as the C code: (2 pi) * u2, -2.0 * log(u1).
        out[sl] = np.sqrt(-2.0 * np.log(u1)) * np.cos((2.0 * np.pi) * u2)
