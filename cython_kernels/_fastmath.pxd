# cython: language_level=3
"""Inline math for the hot kernels (cimported; nothing here runs at import).

``tanh_exp`` is tanh through one exp (or expm1 near zero, where 1 - 2/(e+1)
would cancel): about 7-13 ns instead of glibc's 18-21 ns, within 2 ulp of
the correctly rounded value. The numpy twin
(``tokensim_hpc/numpy_kernels/fastmath.py``) uses the same formula.
"""

from libc.math cimport copysign, exp, expm1, fabs
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cdef extern from *:
    # GCC/Clang: ask for the cache line at addr ahead of its use (read, keep in all
    # levels). The gathers of neighbours' values through a CSR hit random lines of
    # a column bigger than L2 (long-range edges); issued a few hundred edges ahead,
    # their latency overlaps the arithmetic instead of stalling it.
    void prefetch_read "__builtin_prefetch"(const void *addr, int rw, int locality) nogil


cdef inline double tanh_exp(double x) noexcept nogil:
    cdef double a = fabs(x), t, r
    if a > 19.0:
        # tanh(19) rounds to 1 in double precision; also keeps exp from overflowing.
        return copysign(1.0, x)
    if a < 0.55:
        t = expm1(2.0 * a)
        r = t / (t + 2.0)
    else:
        t = exp(2.0 * a)
        r = 1.0 - 2.0 / (t + 1.0)
    return copysign(r, x)


cdef inline double select_positive(double s, double a, double b) noexcept nogil:
    """``a if s > 0.0 else b`` without a branch (NaN s gives b).

    For a sign that flips at random (an agent's sentiment), a branch is
    mispredicted about half the time; masking the bits costs a few cycles.
    """
    cdef uint64_t ba, bb, mask = -<uint64_t>(s > 0.0)
    memcpy(&ba, &a, 8)
    memcpy(&bb, &b, 8)
    ba = (ba & mask) | (bb & ~mask)
    memcpy(&a, &ba, 8)
    return a
