# cython: language_level=3
"""Parts of a rank's agents: the agents of a sub-domain (``Domain.subdomain``).

Local; no MPI.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint64_t


cdef extern from *:
    """
    static inline int tokensim_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int tokensim_popcount64(unsigned long long x) {
        return __builtin_popcountll(x);
    }
    """
    int tokensim_ctz64(unsigned long long x) noexcept nogil
    int tokensim_popcount64(unsigned long long x) noexcept nogil


cdef inline bint _mark(uint64_t *bits, const int64_t[::1] values, int64_t n) noexcept nogil:
    """Set the bit of every value; False (nothing marked past the first bad one) when a
    value is outside [0, n)."""
    cdef Py_ssize_t i
    cdef int64_t v
    for i in range(values.shape[0]):
        v = values[i]
        if v < 0 or v >= n:
            return False
        bits[v >> 6] |= (<uint64_t>1) << (v & 63)
    return True


def ascending_union(int64_t n, const int64_t[::1] a, const int64_t[::1] b,
                    const int64_t[::1] c, int32_t[::1] places):
    """The distinct values of ``a``, ``b`` and ``c`` (slots in [0, n)), ascending, as
    int64; and ``places[v]`` = v's position among them for each (the other entries
    of ``places``, one per slot, are left as they are). Local.

    The values are marked in a bitmap of n bits (n / 8 bytes: in cache for any
    rank's agents) and listed by a scan of its words, so the cost is n / 64 word
    reads plus the values, not a pass over n bytes nor a sort.
    """
    if places.shape[0] < n:
        raise ValueError(f"places has {places.shape[0]} entries, fewer than n = {n}")
    if n > 2**31 - 1:
        raise ValueError(f"ascending_union: n = {n} slots do not fit int32 places")
    cdef Py_ssize_t n_words = (n + 63) >> 6, w, k = 0, count = 0
    cdef uint64_t[::1] bits = np.zeros(max(n_words, 1), dtype=np.uint64)
    cdef uint64_t word
    cdef int64_t v
    cdef bint ok
    with nogil:
        ok = _mark(&bits[0], a, n) and _mark(&bits[0], b, n) and _mark(&bits[0], c, n)
    if not ok:
        raise ValueError(f"ascending_union: a value is outside [0, {n})")
    with nogil:
        for w in range(n_words):
            count += tokensim_popcount64(bits[w])
    out = np.empty(count, dtype=np.int64)
    cdef int64_t[::1] o = out
    with nogil:
        for w in range(n_words):
            word = bits[w]
            while word:
                v = (<int64_t>w << 6) + tokensim_ctz64(word)
                o[k] = v
                places[v] = <int32_t>k
                k += 1
                word &= word - 1
    return out
