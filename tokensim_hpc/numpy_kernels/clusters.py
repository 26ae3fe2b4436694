"""Numpy twin of ``cython_kernels/clusters.pyx`` (same arguments, same results)."""

import numpy as np


def kept_edges(indptr, indices, features, theta2, out_indptr, out_indices):
    """Numpy twin of ``clusters.kept_edges``."""
    n = indptr.shape[0] - 1
    src = np.repeat(np.arange(n), np.diff(indptr))
    dist2 = np.zeros(src.shape[0])
    for f in features:
        diff = f[src] - f[indices]
        dist2 = dist2 + diff * diff
    keep = dist2 < theta2
    out_indptr[0] = 0
    np.cumsum(np.bincount(src[keep], minlength=n), out=out_indptr[1:])
    m = int(keep.sum())
    out_indices[:m] = indices[keep]
    return m


def group_min(group, values, out):
    """Numpy twin of ``clusters.group_min`` (a NaN value lowers nothing; a group's
    out is replaced only by a strictly smaller value)."""
    smallest = np.full(out.shape[0], np.inf)
    np.fmin.at(smallest, group, values)
    lower = smallest < out
    out[lower] = smallest[lower]
    return int(np.any(lower))
