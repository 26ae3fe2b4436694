"""Numpy twin of ``cython_kernels/subsets.pyx`` (same arguments, same results)."""

import numpy as np


def ascending_union(n, a, b, c, places):
    """Numpy twin of ``subsets.ascending_union``."""
    if places.shape[0] < n:
        raise ValueError(f"places has {places.shape[0]} entries, fewer than n = {n}")
    if n > 2**31 - 1:
        raise ValueError(f"ascending_union: n = {n} slots do not fit int32 places")
    member = np.zeros(n, dtype=bool)
    for values in (a, b, c):
        if values.size and (values.min() < 0 or values.max() >= n):
            raise ValueError(f"ascending_union: a value is outside [0, {n})")
        member[values] = True
    out = np.flatnonzero(member).astype(np.int64)
    places[out] = np.arange(out.shape[0], dtype=np.int32)
    return out
