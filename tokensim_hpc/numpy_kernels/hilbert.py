"""Numpy twin of ``cython_kernels/hilbert.pyx``."""

import numpy as np


def _cells(v, lo, hi, bits):
    top = np.uint64((1 << bits) - 1)
    scale = 2.0**bits / (hi - lo) if hi > lo else 0.0
    c = (np.asarray(v, dtype=np.float64) - lo) * scale
    out = np.zeros(c.shape, dtype=np.uint64)
    inside = (c > 0.0) & (c < float(top))
    out[inside] = c[inside].astype(np.uint64)
    out[c >= float(top)] = top
    return out


def _hilbert_d(x, y, bits):
    x = x.astype(np.uint64).copy()
    y = y.astype(np.uint64).copy()
    d = np.zeros(x.shape, dtype=np.uint64)
    n_minus_1 = np.uint64((1 << bits) - 1)
    one, three = np.uint64(1), np.uint64(3)
    for level in range(bits - 1, -1, -1):
        s = np.uint64(1 << level)
        rx = ((x & s) > 0).astype(np.uint64)
        ry = ((y & s) > 0).astype(np.uint64)
        d += s * s * ((three * rx) ^ ry)
        flip = (ry == 0) & (rx == one)
        x[flip] = n_minus_1 - x[flip]
        y[flip] = n_minus_1 - y[flip]
        swap = ry == 0
        x[swap], y[swap] = y[swap], x[swap].copy()
    return d


def hilbert_keys(x, y, xmin, ymin, xmax, ymax, bits, out):
    """Numpy twin of ``hilbert.hilbert_keys``."""
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    out[:] = _hilbert_d(_cells(x, xmin, xmax, bits), _cells(y, ymin, ymax, bits), bits)


def hilbert_cells(cx, cy, bits, out):
    """Numpy twin of ``hilbert.hilbert_cells``."""
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    out[:] = _hilbert_d(np.asarray(cx), np.asarray(cy), bits)
