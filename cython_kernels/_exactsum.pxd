# Exact, order-independent sums of doubles: inline, nogil C-level functions.
#
# Other kernels use them with
#
#     from _exactsum cimport NACC, acc_add, acc_add_block, acc_normalize
#
# This file has no .pyx and no Python-level objects: everything here is an
# enum constant or ``cdef inline`` and is compiled into each kernel that
# cimports it.
#
# Accumulator layout (int64_t[NACC], NACC = 71)
# ---------------------------------------------
# limbs 0..67   a signed fixed-point integer S, S * 2**-1074 = the exact sum;
#               limb j weighs 2**(32*j): S = sum_j acc[j] * 2**(32*j).
#               Every finite double is an integer multiple of 2**-1074 (the
#               smallest subnormal), and the largest one is < 2**1024, i.e.
#               S < 2**2098 per value; 68 limbs (2176 bits) leave room for the
#               sign and for the carries of ~2**78 values.
# slot 68       number of NaNs added
# slot 69       number of +infs added
# slot 70       number of -infs added
#
# Integer addition is associative, so the accumulator after adding a set of
# values does not depend on their order, and accumulators of disjoint parts
# (e.g. one per MPI rank) add up limb by limb to the accumulator of the whole.
# That makes a sum bit-identical on any number of ranks.
#
# Overflow rule: each acc_add changes a limb by less than 2**32, so from a
# normalized state (limbs 0..66 in [0, 2**32)) a limb absorbs at least
# 2**31 - 2 adds before an int64 could overflow. Callers must call
# acc_normalize at least once every ACC_CHUNK = 2**30 adds (the factor two is
# headroom; an acc_add_block of n values counts as n + 2 adds); the
# Python-callables of exactsum.pyx do this themselves between chunks of
# ACC_CHUNK values. Normalize before summing accumulators across
# ranks: the limb-wise sum of R normalized accumulators has limbs < R * 2**32.

from libc.math cimport fabs, ldexp
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cdef extern from "_clones.h":
    pass  # TOKENSIM_CLONES: the AVX2 and baseline builds of tokensim_split_block


cdef extern from *:
    """
    #include <stdint.h>
    /* Bit masks as typed C constants (Cython would make Python ints of
       literals this large). */
    #define TOKENSIM_ES_MANT UINT64_C(0x000FFFFFFFFFFFFF)
    #define TOKENSIM_ES_LOW32 UINT64_C(0xFFFFFFFF)
    #define TOKENSIM_ES_LOW32_I64 INT64_C(0xFFFFFFFF)
    #define TOKENSIM_ES_MAGIC 6755399441055744.0  /* 1.5 * 2**52 */
    #define TOKENSIM_ES_TWO52 4503599627370496.0  /* 2**52 */
    #ifndef TOKENSIM_CHECK_TOP
    #define TOKENSIM_CHECK_TOP 0  /* 1 in TOKENSIM_DEBUG builds (setup.py) */
    #endif
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <math.h>
    /* The split of one value (acc_add_block_top): with y = xj * scale, *pa and *pb
       receive the magic-number sums of its two integers; returns what the split
       leaves, 0 exactly when it is exact (a NaN leaves NaN). may_underflow adds the
       test that y * unscale gives xj back. C, so that the block loop below and the
       pass over the values it leaves (_split) share one definition. */
    static inline double tokensim_split(double xj, double scale, double unscale,
                                        int may_underflow, double *pa, double *pb) {
        double y = xj * scale, r, rest;
        *pa = y + TOKENSIM_ES_MAGIC;
        r = (y - (*pa - TOKENSIM_ES_MAGIC)) * TOKENSIM_ES_TWO52;
        *pb = r + TOKENSIM_ES_MAGIC;
        rest = r - (*pb - TOKENSIM_ES_MAGIC);
        if (may_underflow)
            rest = fabs(rest) + fabs(y * unscale - xj);
        return rest;
    }
    /* The block loop is built for AVX2 and for the baseline (TOKENSIM_CLONES,
       _clones.h): four values a step instead of two where the CPU has AVX2, the same
       IEEE operations on each value and exact integer sums, so the same bits. */
    #define TOKENSIM_SPLIT_LOOP(UNDERFLOW)                                          \
        for (j = 0; j < n; j++) {                                                   \
            if (tokensim_split(x[j], scale, unscale, UNDERFLOW, &pa, &pb) == 0.0) { \
                memcpy(&ua, &pa, 8);                                                \
                memcpy(&ub, &pb, 8);                                                \
                sa += (int64_t)(ua - magic_bits);                                   \
                sb += (int64_t)(ub - magic_bits);                                   \
            } else {                                                                \
                n_left += 1;                                                        \
            }                                                                       \
        }
    /* The vector loop of acc_add_block_top: adds the two integers of every value that
       splits exactly to *a_sum and *b_sum; returns how many values did not. */
    TOKENSIM_CLONES TOKENSIM_MAYBE_UNUSED
    static Py_ssize_t tokensim_split_block(const double *x, Py_ssize_t n, double scale,
                                           double unscale, int may_underflow,
                                           int64_t *a_sum, int64_t *b_sum) {
        Py_ssize_t j, n_left = 0;
        double pa, pb, magic = TOKENSIM_ES_MAGIC;
        uint64_t magic_bits, ua, ub;
        int64_t sa = 0, sb = 0;
        memcpy(&magic_bits, &magic, 8);
        if (may_underflow) {
            TOKENSIM_SPLIT_LOOP(1)
        } else {
            TOKENSIM_SPLIT_LOOP(0)
        }
        *a_sum = sa;
        *b_sum = sb;
        return n_left;
    }
    /* The block sum's contract, checked in debug builds: a value above the binade of
       top would be out of the magic number's range and silently summed wrong. */
    static void tokensim_check_top(const double *x, Py_ssize_t n, double top) {
        Py_ssize_t j;
        for (j = 0; j < n; j++)
            if (fabs(x[j]) > top) {
                fprintf(stderr, "acc_add_block_top: |x[%ld]| = %g above top = %g\\n",
                        (long)j, fabs(x[j]), top);
                abort();
            }
    }
    """
    const uint64_t ES_MANT "TOKENSIM_ES_MANT"        # 52 mantissa bits
    const uint64_t ES_LOW32 "TOKENSIM_ES_LOW32"
    const int64_t ES_LOW32_I64 "TOKENSIM_ES_LOW32_I64"
    const double ES_MAGIC "TOKENSIM_ES_MAGIC"
    const double ES_TWO52 "TOKENSIM_ES_TWO52"
    bint CHECK_TOP "TOKENSIM_CHECK_TOP"
    void check_top "tokensim_check_top"(const double* x, Py_ssize_t n, double top) noexcept nogil
    double _split "tokensim_split"(double xj, double scale, double unscale, bint may_underflow,
                                   double* pa, double* pb) noexcept nogil
    Py_ssize_t _split_block "tokensim_split_block"(
        const double* x, Py_ssize_t n, double scale, double unscale, bint may_underflow,
        int64_t* a_sum, int64_t* b_sum) noexcept nogil

cdef enum:
    NACC = 71           # int64 slots per accumulator
    NLIMBS = 68         # limbs of the fixed-point integer
    SLOT_NAN = 68
    SLOT_PINF = 69
    SLOT_NINF = 70
    ACC_CHUNK = 1073741824  # 2**30: adds between normalizations, at most
    ACC_BLOCK_MAX = 1024    # values per acc_add_block call, at most
    ACC_STAGE = 128         # values an AccStage row holds before its block sum


cdef inline void acc_add(int64_t* acc, double x) noexcept nogil:
    """Add the double ``x`` exactly to the accumulator ``acc[0..NACC)``."""
    cdef uint64_t bits, bexp, m, rest, nz
    cdef uint64_t shift, j
    cdef int64_t s
    # Reinterpret the IEEE-754 bits; memcpy is the aliasing-safe way and
    # compiles to a single register move.
    memcpy(&bits, &x, 8)
    bexp = (bits >> 52) & 0x7ff
    if bexp == 0x7ff:
        # Inf (mantissa 0) or NaN: counted, not summed.
        if bits & ES_MANT:
            acc[SLOT_NAN] += 1
        elif bits >> 63:
            acc[SLOT_NINF] += 1
        else:
            acc[SLOT_PINF] += 1
        return
    # x = m * 2**e exactly with m < 2**53. Normal numbers (bexp >= 1):
    # m = mantissa | 2**52, e = bexp - 1075. Subnormals and zeros (bexp = 0):
    # m = mantissa, e = -1074. Branch-free: nz is 1 for normals, 0 otherwise,
    # and the position of bit 0 of m above 2**-1074 is b = e + 1074 =
    # bexp - nz (bexp - 1 for normals, 0 for subnormals). Zeros add nothing.
    nz = bexp != 0
    m = (bits & ES_MANT) | (nz << 52)
    bexp -= nz                 # now b, in [0, 2045]
    j = bexp >> 5              # limb of bit b: b // 32, at most 63
    shift = bexp & 31          # bit within that limb
    # m << shift spans up to 84 bits = three 32-bit pieces for limbs j, j+1,
    # j+2. Piece 0 is the low 32 bits of m << shift: the C shift wraps modulo
    # 2**64 but that only loses bits above bit 63, never the low 32.
    # The rest is m >> (32 - shift) (a shift by 1..32, always defined), < 2**53.
    rest = m >> (32 - shift)
    # Branch-free sign: s = 0 (x >= 0) or -1 (x < 0); (p ^ s) - s is p or -p
    # in two's complement. Avoids mispredicted branches on mixed signs.
    s = -<int64_t>(bits >> 63)
    acc[j] += ((<int64_t>((m << shift) & ES_LOW32)) ^ s) - s
    acc[j + 1] += ((<int64_t>(rest & ES_LOW32)) ^ s) - s
    acc[j + 2] += ((<int64_t>(rest >> 32)) ^ s) - s


cdef inline void acc_add_int(int64_t* acc, int64_t v, uint64_t b) noexcept nogil:
    """Add the integer ``v * 2**(b - 1074)`` exactly (|v| < 2**63, b <= 2047).

    The same three-limb split as ``acc_add``: |v| << (b % 32) spans at most
    95 bits, and each limb changes by less than 2**32.
    """
    cdef int64_t s = v >> 63                    # 0 or -1
    cdef uint64_t m = <uint64_t>((v ^ s) - s)   # |v|
    cdef uint64_t j = b >> 5, shift = b & 31
    cdef uint64_t rest = m >> (32 - shift)      # < 2**62
    acc[j] += ((<int64_t>((m << shift) & ES_LOW32)) ^ s) - s
    acc[j + 1] += ((<int64_t>(rest & ES_LOW32)) ^ s) - s
    acc[j + 2] += ((<int64_t>(rest >> 32)) ^ s) - s


cdef inline void acc_add_block_top(int64_t* acc, const double* x, Py_ssize_t n,
                                   double top) noexcept nogil:
    """Add ``x[0..n)`` exactly, n <= ACC_BLOCK_MAX, given top >= max |x[j]| (a smaller
    top gives a wrong sum; ``TOKENSIM_DEBUG=1`` builds check it and abort).

    The same sum as n ``acc_add``. Fast path: with E the binary exponent of
    top and S = 50 - E, y = x * 2**S has |y| < 2**51 and is exact unless it
    underflows (possible only when S < 0; y * 2**-S == x tells). y splits
    into two integers, y = a + b * 2**-52: a = y rounded to the nearest
    integer, r = (y - a) * 2**52 (exact: a number minus its nearest integer,
    Sterbenz), b = r rounded; the split is exact exactly when r - b is 0,
    i.e. for every value whose lowest bit is at or above 2**-52 in y's units
    (all |y| >= 1, and zeros). Each integer, below 2**51 in magnitude, comes
    out of a double by the magic-number trick (adding 1.5 * 2**52 puts it in
    the mantissa's low bits: the bits of that sum minus the bits of 1.5 *
    2**52) rather than a float-to-integer conversion, and the test is one
    comparison, so the loop has no branch: the compiler turns it into vector
    code (``_split_block``). a and b are summed in two int64 registers (n *
    2**51 < 2**63) and reach the limbs once per block, through
    ``acc_add_int``. The values left (bits below 2**-52 in y's units,
    underflows, NaNs) take ``acc_add`` in a second pass, only in blocks that
    have any, which stops at the last of them. Whole blocks whose top is
    infinite or below 2**-969 (so that every limb position stays >= 0) take
    ``acc_add``. A kernel that produces the values can track top on the way
    (``top = a if a > top else top`` with a = |x|, which skips NaNs).
    """
    cdef Py_ssize_t j, n_left
    cdef double scale, unscale, pa, pb
    cdef uint64_t bits
    cdef int64_t e, S, a_sum, b_sum
    if CHECK_TOP:
        check_top(x, n, top)
    if top == 0.0:
        for j in range(n):
            if x[j] != x[j]:
                acc_add(acc, x[j])
        return
    memcpy(&bits, &top, 8)
    e = <int64_t>((bits >> 52) & 0x7ff) - 1023
    if e > 1023 or e < -969:
        for j in range(n):
            acc_add(acc, x[j])
        return
    S = 50 - e
    scale = ldexp(1.0, <int>S)
    unscale = ldexp(1.0, <int>-S)
    if S >= 0:
        n_left = _split_block(x, n, scale, unscale, False, &a_sum, &b_sum)
    else:
        n_left = _split_block(x, n, scale, unscale, True, &a_sum, &b_sum)
    acc_add_int(acc, a_sum, <uint64_t>(1074 - S))
    acc_add_int(acc, b_sum, <uint64_t>(1022 - S))
    j = 0
    while n_left:  # the values the split left, by the same test
        if not (_split(x[j], scale, unscale, S < 0, &pa, &pb) == 0.0):
            acc_add(acc, x[j])
            n_left -= 1
        j += 1


cdef inline void acc_add_block(int64_t* acc, const double* x, Py_ssize_t n) noexcept nogil:
    """``acc_add_block_top`` with top = max |x[j]|, found here."""
    # Four independent maxima: one chain of maxsd would cost its latency per value.
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0, a
    cdef Py_ssize_t j, n4 = n - (n & 3)
    for j in range(0, n4, 4):
        a = fabs(x[j])
        t0 = a if a > t0 else t0
        a = fabs(x[j + 1])
        t1 = a if a > t1 else t1
        a = fabs(x[j + 2])
        t2 = a if a > t2 else t2
        a = fabs(x[j + 3])
        t3 = a if a > t3 else t3
    for j in range(n4, n):
        a = fabs(x[j])
        t0 = a if a > t0 else t0
    t0 = t1 if t1 > t0 else t0
    t2 = t3 if t3 > t2 else t2
    acc_add_block_top(acc, x, n, t2 if t2 > t0 else t0)


cdef inline void acc_normalize(int64_t* acc) noexcept nogil:
    """Propagate carries in place: limbs 0..66 into [0, 2**32), sign in limb 67.

    The value S = sum_j acc[j] * 2**(32*j) is unchanged. Uses floor
    semantics: ``v & 0xffffffff`` is the non-negative remainder and the
    arithmetic shift ``v >> 32`` the floor quotient, also for v < 0 (gcc
    shifts signed integers arithmetically). The NaN/inf counts are untouched.
    """
    cdef int64_t carry = 0, v
    cdef int k
    for k in range(NLIMBS - 1):
        v = acc[k] + carry
        acc[k] = v & ES_LOW32_I64
        carry = v >> 32
    acc[NLIMBS - 1] += carry


# Staged exact sums into many accumulator rows
# -------------------------------------------
# A kernel that adds values one at a time into a few accumulator rows (an order's
# amount into its pool's row, a holding's change into its (type, slot) row) would call
# acc_add for each: three read-modify-writes of nearby limbs, and consecutive values of
# one row (similar magnitudes: the same limbs) wait on each other through memory.
# Staging them per row and adding each full row with acc_add_block costs a store per
# value plus the block's vector loop: the same exact sums.
# Keep a stage a local variable of the kernel, opened and closed there: once its
# address goes to a function that is not inlined, it lives in memory and every store in
# the kernel's loop reloads its fields.

cdef struct AccStage:
    int64_t* acc        # the accumulator rows: a C-contiguous (rows, NACC) array
    double* buf         # rows * ACC_STAGE staged values
    Py_ssize_t* fill    # values staged per row
    Py_ssize_t rows


cdef inline int stage_open(AccStage* st, int64_t* acc, Py_ssize_t rows) noexcept nogil:
    """Set up staging into the ``rows`` accumulator rows of the C-contiguous (rows, NACC)
    array at ``acc``. Returns -1 when memory is short (nothing to close then), else 0."""
    st.acc = acc
    st.rows = rows
    st.buf = <double*>malloc((rows if rows > 0 else 1) * ACC_STAGE * sizeof(double))
    st.fill = <Py_ssize_t*>malloc((rows if rows > 0 else 1) * sizeof(Py_ssize_t))
    if st.buf == NULL or st.fill == NULL:
        free(st.buf)
        free(st.fill)
        return -1
    memset(st.fill, 0, (rows if rows > 0 else 1) * sizeof(Py_ssize_t))
    return 0


cdef inline void stage_add(AccStage* st, Py_ssize_t row, double x) noexcept nogil:
    """Add ``x`` exactly to accumulator ``row`` (staged: it reaches the limbs when the row's
    stage is full or at ``stage_close``)."""
    cdef Py_ssize_t k = st.fill[row]
    cdef double* buf = st.buf + row * ACC_STAGE
    buf[k] = x
    k += 1
    if k == ACC_STAGE:
        acc_add_block(st.acc + row * NACC, buf, ACC_STAGE)
        k = 0
    st.fill[row] = k


cdef inline void stage_add_diff(AccStage* st, Py_ssize_t row, double new,
                                double old) noexcept nogil:
    """Add ``new - old`` exactly to accumulator ``row`` (as ``new`` and ``-old``)."""
    stage_add(st, row, new)
    stage_add(st, row, -old)


cdef inline void stage_close(AccStage* st) noexcept nogil:
    """Add what is still staged and free the stage."""
    cdef Py_ssize_t r
    for r in range(st.rows):
        if st.fill[r]:
            acc_add_block(st.acc + r * NACC, st.buf + r * ACC_STAGE, st.fill[r])
    free(st.buf)
    free(st.fill)
    st.buf = NULL
    st.fill = NULL
