# cython: language_level=3
"""Inline math for the hot kernels (cimported; nothing here runs at import).

``tanh_block`` computes tanh as a rational function of |x|, without a libm call:
below 0.625, Cephes' minimax rational (tanh = a + a z P(z) / Q(z),
z = a^2); above, (E - 1) / (E + 1) with E = exp(2a) = 2^k (q + p) / (q - p)
from Cephes' Pade approximant of exp on the reduced argument. No branch: both
sides are computed and one is selected, so that ``tanh_block`` (a block of values in
place) is vector code, with AVX2 where the CPU has it (function multi-versioning;
the same operations on every value either way). Relative error below 4.8e-16 (2 to
4 ulp) against glibc's tanh on a dense grid and on random arguments, against
4.6e-16 for the libm exp and expm1 formula it replaces. The numpy twin
(``tokensim_hpc/numpy_kernels/fastmath.py``) runs the same operations in the
same order.
"""

from libc.math cimport copysign, fabs
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cdef extern from *:
    # GCC/Clang: ask for the cache line at addr ahead of its use (read, keep in all
    # levels). The gathers of neighbours' values through a CSR hit random lines of
    # a column bigger than L2 (long-range edges); issued a few hundred edges ahead,
    # their latency overlaps the arithmetic instead of stalling it.
    void prefetch_read "__builtin_prefetch"(const void *addr, int rw, int locality) nogil


cdef extern from "_clones.h":
    pass  # TOKENSIM_CLONES: the AVX2 and baseline builds of tokensim_tanh_block


cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* tanh as a rational function of |x| (the module's notes). Cephes tanh on
       [0, 0.625]: a (Q + z P) / Q, z = a^2; above, (E - 1) / (E + 1) with
       E = exp(2a) = 2^k (q + p) / (q - p) from Cephes' Pade approximant of exp on the
       reduced argument (2a = k ln 2 + r, ln 2 in two parts; 2a capped at 40: tanh(20)
       rounds to 1 and 2^k stays finite; a NaN passes through). Both sides are
       computed and one is selected, without a branch, so that a loop over a block of
       values becomes vector code. */
    static inline double tokensim_tanh(double x) {
        double a = fabs(x), z = a * a, tp, tq, y, t, kf, r, rr, p, q, s, num, den;
        uint64_t bits;
        int small;
        tp = (-9.64399179425052238628E-1 * z + -9.92877231001918586564E1) * z
             + -1.61468768441708447952E3;
        tq = ((z + 1.12811678491632931402E2) * z + 2.23548839060100448583E3) * z
             + 4.84406305325125486048E3;
        y = 2.0 * a;
        y = y > 40.0 ? 40.0 : y;
        t = y * 1.4426950408889634073599 + 6755399441055744.0;  /* + 1.5 * 2**52 */
        kf = t - 6755399441055744.0;  /* rounds 2a / ln 2 to an integer */
        r = y - kf * 6.93145751953125E-1;
        r = r - kf * 1.42860682030941723212E-6;
        rr = r * r;
        p = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr
                 + 9.99999999999999999910E-1);
        q = ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr
             + 2.27265548208155028766E-1) * rr + 2.00000000000000000009E0;
        /* 2^k from the integer in t's low mantissa bits (0 <= k <= 58). */
        memcpy(&bits, &t, 8);
        bits = (bits - UINT64_C(0x4338000000000000) + 1023) << 52;
        memcpy(&s, &bits, 8);
        small = a < 0.625;
        num = small ? a * (tq + z * tp) : s * (q + p) - (q - p);
        den = small ? tq : s * (q + p) + (q - p);
        return copysign(num / den, x);
    }
    /* tanh of x[0..n) in place. */
    TOKENSIM_CLONES TOKENSIM_MAYBE_UNUSED
    static void tokensim_tanh_block(double *x, Py_ssize_t n) {
        Py_ssize_t j;
        for (j = 0; j < n; j++)
            x[j] = tokensim_tanh(x[j]);
    }
    """
    void tanh_block "tokensim_tanh_block"(double* x, Py_ssize_t n) noexcept nogil


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
