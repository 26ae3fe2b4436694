# cython: language_level=3
"""Inline math for the hot kernels (cimported; nothing here runs at import).

``tanh_exp`` is tanh as a rational function of |x|, without a libm call:
below 0.625, Cephes' minimax rational (tanh = a + a z P(z) / Q(z),
z = a^2); above, (E - 1) / (E + 1) with E = exp(2a) = 2^k (q + p) / (q - p)
from Cephes' Pade approximant of exp on the reduced argument. One branch, on the
side of 0.625. Relative error below 4.8e-16 (2 to 4 ulp) against glibc's tanh on a
dense grid and on random arguments, against 4.6e-16 for the libm exp and
expm1 formula it replaces. The numpy twin
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


# Cephes tanh on [0, 0.625]: P(z) and Q(z) (leading 1 implied), z = a^2.
DEF TP0 = -9.64399179425052238628E-1
DEF TP1 = -9.92877231001918586564E1
DEF TP2 = -1.61468768441708447952E3
DEF TQ1 = 1.12811678491632931402E2
DEF TQ2 = 2.23548839060100448583E3
DEF TQ3 = 4.84406305325125486048E3
# Cephes exp: exp(r) = (q + p) / (q - p), p = r P(r^2), q = Q(r^2), |r| <= ln(2) / 2;
# ln 2 split in two for the reduction (LN2_HI * k exact for |k| < 2**11).
DEF EP0 = 1.26177193074810590878E-4
DEF EP1 = 3.02994407707441961300E-2
DEF EP2 = 9.99999999999999999910E-1
DEF EQ0 = 3.00198505138664455042E-6
DEF EQ1 = 2.52448340349684104192E-3
DEF EQ2 = 2.27265548208155028766E-1
DEF EQ3 = 2.00000000000000000009E0
DEF LOG2E = 1.4426950408889634073599
DEF LN2_HI = 6.93145751953125E-1
DEF LN2_LO = 1.42860682030941723212E-6
DEF ROUND = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds to an integer


cdef inline double tanh_exp(double x) noexcept nogil:
    cdef double a = fabs(x), z, tp, tq, y, t, kf, r, rr, p, q, s, num, den
    cdef uint64_t bits, round_bits
    # Small |x|: a (Q + z P) / Q.
    z = a * a
    tp = (TP0 * z + TP1) * z + TP2
    tq = ((z + TQ1) * z + TQ2) * z + TQ3
    # Large |x|: E = 2^k (q + p) / (q - p) with 2a = k ln 2 + r; 2a is capped at 40
    # (tanh(20) rounds to 1; 2^k stays finite), a NaN passes through.
    y = 2.0 * a
    if y > 40.0:
        y = 40.0
    t = y * LOG2E + ROUND
    kf = t - ROUND
    r = y - kf * LN2_HI
    r = r - kf * LN2_LO
    rr = r * r
    p = r * ((EP0 * rr + EP1) * rr + EP2)
    q = ((EQ0 * rr + EQ1) * rr + EQ2) * rr + EQ3
    # 2^k from the integer in t's low mantissa bits (0 <= k <= 58).
    round_bits = 0x4338000000000000  # the bits of ROUND
    memcpy(&bits, &t, 8)
    bits = (bits - round_bits + 1023) << 52
    memcpy(&s, &bits, 8)
    # The compiler branches here, on the side of 0.625: with sentiments that are mostly
    # far from 0, predictably (a bit-mask select of both sides measured slower in B1).
    if a < 0.625:
        num = a * (tq + z * tp)
        den = tq
    else:
        num = s * (q + p) - (q - p)
        den = s * (q + p) + (q - p)
    return copysign(num / den, x)


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
