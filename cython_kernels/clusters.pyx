# cython: language_level=3
"""The edges of the clustering graph (paper 2.1): c_ij = 1 when ||mu_i - mu_j|| < theta.

One pass over the CSR keeps the edges whose ends' strategy vectors are
closer than theta, as a new CSR over the same rows. Local; no MPI.
"""

from libc.stdint cimport int32_t, int64_t


def kept_edges(const int64_t[::1] indptr, const int32_t[::1] indices,
               const double[:, ::1] features, double theta2, int64_t[::1] out_indptr,
               int32_t[::1] out_indices):
    """Keep the edges i -> j with sum_f (features[f, i] - features[f, j])^2 < theta2.

    ``features`` is (F, owned + ghost slots); the squared distance adds the
    features in order f = 0, 1, ... (a twin adds them in the same order).
    ``out_indptr`` (n_rows + 1) and ``out_indices`` (at least the number of
    edges) receive the kept edges in CSR order. Returns their number. Local.
    """
    cdef Py_ssize_t i, e, f, j, m = 0, n = indptr.shape[0] - 1, n_feat = features.shape[0]
    cdef double d2, diff
    with nogil:
        out_indptr[0] = 0
        for i in range(n):
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                d2 = 0.0
                for f in range(n_feat):
                    diff = features[f, i] - features[f, j]
                    d2 = d2 + diff * diff
                if d2 < theta2:
                    out_indices[m] = <int32_t>j
                    m += 1
            out_indptr[i + 1] = m
    return m


def group_min(const int64_t[::1] group, const double[::1] values, double[::1] out):
    """out[group[i]] <- min(out[group[i]], values[i]) for every i (a NaN value lowers
    nothing); returns 1 when some out lowered, else 0. Local. (The minimum of each
    group in one pass: the clusters' labels per local component.)"""
    cdef Py_ssize_t i, g, n = group.shape[0]
    cdef int lowered = 0
    with nogil:
        for i in range(n):
            g = group[i]
            if values[i] < out[g]:
                out[g] = values[i]
                lowered = 1
    return lowered
