"""Vectorized counter-based random numbers (Philox4x64-10).

Python-callable wrappers around the inline functions of ``_philox.pxd``: one
random block per agent global id, for a fixed (seed, tick, stream, draw).
The numpy twin is ``tokensim_hpc.numpy_kernels.rng``.

Keying: key = (seed, stream), counter = (gid, tick, draw, 0), all uint64;
``gid`` (int64) is reinterpreted as uint64. Output ``i`` depends only on
``gid[i]`` and the scalar keys, never on the other gids, their order, or the
number of ranks. (`normal` may read further blocks, of counter
(gid, tick, draw, j) with j >= 1: see ``_philox.pxd``.)
"""

import numpy as np

from libc.stdint cimport int64_t, uint64_t

from _philox cimport (ZIG_FI, ZIG_KI, ZIG_WI, philox_normal, philox_normal4,
                      philox_raw,
                      philox_uniform)


def random_raw(uint64_t seed, const int64_t[:] gid, uint64_t tick,
               uint64_t stream, uint64_t draw, uint64_t[:, ::1] out):
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
    out : ndarray of uint64, shape (n, 4), C-contiguous
        Receives the four output words of each block.

    Raises
    ------
    ValueError
        If ``out`` does not have shape (len(gid), 4).
    """
    cdef Py_ssize_t i, n = gid.shape[0]
    if out.shape[0] != n or out.shape[1] != 4:
        raise ValueError(f"out must have shape ({n}, 4), got ({out.shape[0]}, {out.shape[1]})")
    with nogil:
        for i in range(n):
            philox_raw(seed, <uint64_t>gid[i], tick, stream, draw, &out[i, 0])


def uniform(uint64_t seed, const int64_t[:] gid, uint64_t tick,
            uint64_t stream, uint64_t draw, double[::1] out):
    """Uniform doubles in [0, 1), one per gid.

    ``out[i] = (w0 >> 11) * 2**-53`` where ``w0`` is word 0 of the block of
    ``gid[i]``; every value is a multiple of 2**-53.

    Parameters
    ----------
    seed, gid, tick, stream, draw
        As in `random_raw`.
    out : ndarray of float64, shape (n,), contiguous
        Receives the numbers.

    Raises
    ------
    ValueError
        If ``len(out) != len(gid)``.
    """
    cdef Py_ssize_t i, n = gid.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out must have length {n}, got {out.shape[0]}")
    with nogil:
        for i in range(n):
            out[i] = philox_uniform(seed, <uint64_t>gid[i], tick, stream, draw)


def normal(uint64_t seed, const int64_t[:] gid, uint64_t tick,
           uint64_t stream, uint64_t draw, double[::1] out):
    """Standard normal doubles (256-layer Ziggurat), one per gid.

    Word 0 of the block of ``gid[i]`` gives the number in 98.5 % of the
    cases; the others read further words (``philox_normal`` in
    ``_philox.pxd`` describes the algorithm and the words it reads; the
    tables are those of `ziggurat_tables`).

    Parameters
    ----------
    seed, gid, tick, stream, draw
        As in `random_raw`.
    out : ndarray of float64, shape (n,), contiguous
        Receives the numbers.

    Raises
    ------
    ValueError
        If ``len(out) != len(gid)``.
    """
    cdef Py_ssize_t i, n = gid.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out must have length {n}, got {out.shape[0]}")
    with nogil:
        for i in range(n):
            out[i] = philox_normal(seed, <uint64_t>gid[i], tick, stream, draw)


def random_raw_lanes(uint64_t seed, const int64_t[:] gid, uint64_t tick, uint64_t stream,
                     uint64_t draw, uint64_t[:, ::1] out):
    """`random_raw` stored lane-major: ``out[w, i]`` is word w of gid[i]'s block.

    Shape (4, n): a kernel that reads one word per agent per tick then
    streams 8 bytes per agent instead of a whole 32-byte block.
    """
    cdef Py_ssize_t i, n = gid.shape[0]
    cdef uint64_t words[4]
    if out.shape[0] != 4 or out.shape[1] != n:
        raise ValueError(f"out must have shape (4, {n}), got ({out.shape[0]}, {out.shape[1]})")
    with nogil:
        for i in range(n):
            philox_raw(seed, <uint64_t>gid[i], tick, stream, draw, words)
            out[0, i] = words[0]
            out[1, i] = words[1]
            out[2, i] = words[2]
            out[3, i] = words[3]


def normal4(uint64_t seed, const int64_t[:] gid, uint64_t tick, uint64_t stream,
            uint64_t draw, const uint64_t[:, ::1] words, double[::1] out):
    """Standard normals for ``tick``, four ticks to a Philox block (``philox_normal4``).

    Parameters
    ----------
    seed, gid, tick, stream, draw
        As in `normal`.
    words : ndarray of uint64, shape (n, 4), contiguous
        ``random_raw(seed, gid, tick >> 2, stream, draw, words)``: the block
        that the four ticks tick & ~3 .. tick | 3 share (a kernel caches it).
    out : ndarray of float64, shape (n,), contiguous
        Receives the numbers.
    """
    cdef Py_ssize_t i, n = gid.shape[0]
    cdef uint64_t lane = tick & 3
    if out.shape[0] != n or words.shape[0] != n or words.shape[1] != 4:
        raise ValueError(f"out must have length {n} and words shape ({n}, 4)")
    with nogil:
        for i in range(n):
            out[i] = philox_normal4(words[i, lane], seed, <uint64_t>gid[i], tick, stream, draw)


def ziggurat_tables():
    """Copies of the C Ziggurat tables ``(ki, wi, fi)`` that `normal` uses.

    Returns
    -------
    ki : ndarray of uint64, shape (256,)
    wi, fi : ndarray of float64, shape (256,)
        As ``tokensim_hpc.numpy_kernels.rng.ziggurat_tables()`` (the tests
        check that they are equal bit for bit).
    """
    ki = np.empty(256, dtype=np.uint64)
    wi = np.empty(256, dtype=np.float64)
    fi = np.empty(256, dtype=np.float64)
    cdef uint64_t[::1] kv = ki
    cdef double[::1] wv = wi, fv = fi
    cdef Py_ssize_t i
    for i in range(256):
        kv[i] = ZIG_KI[i]
        wv[i] = ZIG_WI[i]
        fv[i] = ZIG_FI[i]
    return ki, wi, fi
