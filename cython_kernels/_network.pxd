# Neighbour sums over CSR rows: inline, nogil C-level functions (cimported).
#
# Edge e of a row (counted from the row's first edge) goes to partial sum
# e % 4, in edge order, and n = (p0 + p1) + (p2 + p3): four short dependency
# chains instead of one of k additions. Every numpy twin adds in the same
# order (``tokensim_hpc/numpy_kernels/b1.py``, ``_neighbour_sums``).

from libc.stdint cimport int32_t

cdef inline double neighbour_sum(Py_ssize_t e, Py_ssize_t end, const int32_t[::1] indices,
                                 const double[::1] s_old) noexcept nogil:
    cdef double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0
    while e + 4 <= end:
        p0 = p0 + s_old[indices[e]]
        p1 = p1 + s_old[indices[e + 1]]
        p2 = p2 + s_old[indices[e + 2]]
        p3 = p3 + s_old[indices[e + 3]]
        e += 4
    if e < end:
        p0 = p0 + s_old[indices[e]]
    if e + 1 < end:
        p1 = p1 + s_old[indices[e + 1]]
    if e + 2 < end:
        p2 = p2 + s_old[indices[e + 2]]
    return (p0 + p1) + (p2 + p3)


cdef inline double weighted_neighbour_sum(Py_ssize_t e, Py_ssize_t end,
                                          const int32_t[::1] indices,
                                          const double[::1] weights,
                                          const double[::1] s_old) noexcept nogil:
    cdef double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0
    while e + 4 <= end:
        p0 = p0 + weights[e] * s_old[indices[e]]
        p1 = p1 + weights[e + 1] * s_old[indices[e + 1]]
        p2 = p2 + weights[e + 2] * s_old[indices[e + 2]]
        p3 = p3 + weights[e + 3] * s_old[indices[e + 3]]
        e += 4
    if e < end:
        p0 = p0 + weights[e] * s_old[indices[e]]
    if e + 1 < end:
        p1 = p1 + weights[e + 1] * s_old[indices[e + 1]]
    if e + 2 < end:
        p2 = p2 + weights[e + 2] * s_old[indices[e + 2]]
    return (p0 + p1) + (p2 + p3)
