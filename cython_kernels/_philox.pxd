# Counter-based random numbers: Philox4x64-10 as inline, nogil C-level functions.
#
# Other kernels use them with
#
#     from _philox cimport philox_raw, philox_uniform, philox_normal
#
# This file has no .pyx and no Python-level objects: everything here is
# ``cdef inline`` and is compiled into each kernel that cimports it.
#
# Keying (fixed; changing it changes every simulation result)
# -----------------------------------------------------------
#     key     = (seed, stream)            two uint64 words
#     counter = (gid, tick, draw, 0)      four uint64 words
#
# ``gid`` is the agent's global id (an int64 in the simulator, reinterpreted
# as uint64), ``tick`` the time step, ``stream`` names the purpose of the
# numbers (one stream per model decision) and ``draw`` numbers the draws an
# agent makes for one purpose in one tick. A random number is thus a pure
# function of these five integers and does not depend on which rank owns the
# agent, on the order agents are visited in, or on how many numbers other
# agents drew.
#
# The block function is Philox4x64 with 10 rounds (Salmon, Moraes, Dror and
# Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; Random123).
# ``philox_raw`` of counter c and key k equals the first four outputs of
# ``numpy.random.Philox(counter=c - 1, key=k).random_raw(4)``, because numpy
# increments its 256-bit counter before each block (see tests/test_rng.py).

from libc.math cimport cos, log, sqrt
from libc.stdint cimport uint64_t

cdef extern from *:
    """
    #include <stdint.h>

    /* Philox4x64 multipliers and Weyl key increments (Random123). */
    #define TOKENSIM_PHILOX_M0 UINT64_C(0xD2E7470EE14C6C93)
    #define TOKENSIM_PHILOX_M1 UINT64_C(0xCA5A826395121157)
    #define TOKENSIM_PHILOX_W0 UINT64_C(0x9E3779B97F4A7C15)
    #define TOKENSIM_PHILOX_W1 UINT64_C(0xBB67AE8584CAA73B)
    /* 2**-53: turns a 53-bit integer into a double in [0, 1) exactly. */
    #define TOKENSIM_PHILOX_2M53 (1.0 / 9007199254740992.0)
    #define TOKENSIM_PHILOX_TWO_PI 6.283185307179586

    /* Full 64x64 -> 128-bit product through gcc's unsigned __int128 (one
       MUL instruction on x86-64): returns the low word, stores the high. */
    static inline uint64_t tokensim_philox_mulhilo64(uint64_t a, uint64_t b,
                                                     uint64_t *hi)
    {
        unsigned __int128 p = (unsigned __int128)a * (unsigned __int128)b;
        *hi = (uint64_t)(p >> 64);
        return (uint64_t)p;
    }
    """
    const uint64_t PHILOX_M0 "TOKENSIM_PHILOX_M0"
    const uint64_t PHILOX_M1 "TOKENSIM_PHILOX_M1"
    const uint64_t PHILOX_W0 "TOKENSIM_PHILOX_W0"
    const uint64_t PHILOX_W1 "TOKENSIM_PHILOX_W1"
    const double PHILOX_2M53 "TOKENSIM_PHILOX_2M53"
    const double PHILOX_TWO_PI "TOKENSIM_PHILOX_TWO_PI"
    uint64_t philox_mulhilo64 "tokensim_philox_mulhilo64"(
        uint64_t a, uint64_t b, uint64_t* hi) nogil


cdef inline void philox_raw(uint64_t seed, uint64_t gid, uint64_t tick,
                            uint64_t stream, uint64_t draw, uint64_t out[4]) noexcept nogil:
    """Philox4x64-10 block of counter (gid, tick, draw, 0), key (seed, stream).

    Writes the four output words to ``out[0..3]``.
    """
    cdef uint64_t c0 = gid, c1 = tick, c2 = draw, c3 = 0
    cdef uint64_t k0 = seed, k1 = stream
    cdef uint64_t lo0, hi0, lo1, hi1
    cdef int _r
    for _r in range(10):
        # One Philox round: two 64x64->128 products, then the S-box
        # permutation of Random123's _philox4x64round.
        lo0 = philox_mulhilo64(PHILOX_M0, c0, &hi0)
        lo1 = philox_mulhilo64(PHILOX_M1, c2, &hi1)
        c0 = hi1 ^ c1 ^ k0
        c1 = lo1
        c2 = hi0 ^ c3 ^ k1
        c3 = lo0
        # Key schedule: Weyl sequence, wraps modulo 2**64 (unsigned C
        # arithmetic). The bump after the last round is unused.
        k0 += PHILOX_W0
        k1 += PHILOX_W1
    out[0] = c0
    out[1] = c1
    out[2] = c2
    out[3] = c3


cdef inline double philox_uniform(uint64_t seed, uint64_t gid, uint64_t tick,
                                  uint64_t stream, uint64_t draw) noexcept nogil:
    """Uniform double in [0, 1): the top 53 bits of word 0 times 2**-53."""
    cdef uint64_t out[4]
    philox_raw(seed, gid, tick, stream, draw, out)
    # (w >> 11) < 2**53 converts to double exactly; the product by a power
    # of two is exact too, so the result is a multiple of 2**-53 in [0, 1).
    return <double>(out[0] >> 11) * PHILOX_2M53


cdef inline double philox_normal(uint64_t seed, uint64_t gid, uint64_t tick,
                                 uint64_t stream, uint64_t draw) noexcept nogil:
    """Standard normal by Box-Muller (cosine branch) from words 0 and 1.

    u1 = ((w0 >> 11) + 1) * 2**-53 lies in (0, 1], so log(u1) is finite;
    u2 = (w1 >> 11) * 2**-53 lies in [0, 1);
    z = sqrt(-2 log u1) * cos(2 pi u2).
    """
    cdef uint64_t out[4]
    cdef double u1, u2
    philox_raw(seed, gid, tick, stream, draw, out)
    u1 = <double>((out[0] >> 11) + 1) * PHILOX_2M53
    u2 = <double>(out[1] >> 11) * PHILOX_2M53
    return sqrt(-2.0 * log(u1)) * cos(PHILOX_TWO_PI * u2)
