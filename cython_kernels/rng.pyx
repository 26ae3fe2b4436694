"""Vectorized counter-based random numbers (Philox4x64-10).

Python-callable wrappers around the inline functions of ``_philox.pxd``: one
random block per agent global id, for a fixed (seed, tick, stream, draw).
The numpy twin is ``tokensim_hpc.numpy_kernels.rng``.

Keying: key = (seed, stream), counter = (gid, tick, draw, 0), all uint64;
``gid`` (int64) is reinterpreted as uint64. Output ``i`` depends only on
``gid[i]`` and the scalar keys, never on the other gids, their order, or the
number of ranks.
"""

from libc.stdint cimport int64_t, uint64_t

from _philox cimport philox_normal, philox_raw, philox_uniform


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
    """Standard normal doubles (Box-Muller), one per gid.

    ``u1 = ((w0 >> 11) + 1) * 2**-53`` in (0, 1], ``u2 = (w1 >> 11) * 2**-53``
    in [0, 1), ``out[i] = sqrt(-2 log u1) * cos(2 pi u2)`` with the C
    library's ``log`` and ``cos``.

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
