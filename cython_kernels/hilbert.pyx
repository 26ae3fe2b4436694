# cython: language_level=3
"""Hilbert keys of 2-D positions (the global agent order).

Positions are mapped to integer cells of a 2**bits x 2**bits grid over a
bounding box that every rank agrees on, and each cell gets its index along
the Hilbert curve. Consecutive keys are edge-adjacent cells, so a contiguous
range of keys is a compact region of the plane: that is what makes a rank's
block of the global order a good spatial partition.
"""

from libc.stdint cimport int64_t, uint64_t


cdef inline uint64_t _cell(double v, double lo, double scale, uint64_t top) nogil:
    # Clamp to the grid: positions on the upper edge of the box fall in the last cell.
    cdef double c = (v - lo) * scale
    if c <= 0.0:
        return 0
    if c >= <double>top:
        return top
    return <uint64_t>c


cdef inline uint64_t hilbert_d(uint64_t x, uint64_t y, int bits) nogil:
    """Index along the Hilbert curve of cell (x, y) on a 2**bits grid."""
    cdef uint64_t d = 0, s, rx, ry, t
    cdef uint64_t n = (<uint64_t>1) << bits if bits < 64 else 0
    s = (<uint64_t>1) << (bits - 1)
    while s > 0:
        rx = 1 if (x & s) else 0
        ry = 1 if (y & s) else 0
        d += s * s * ((3 * rx) ^ ry)
        # Rotate the quadrant so the sub-curve has the canonical orientation.
        if ry == 0:
            if rx == 1:
                x = n - 1 - x
                y = n - 1 - y
            t = x
            x = y
            y = t
        s >>= 1
    return d


def hilbert_keys(const double[:] x, const double[:] y, double xmin, double ymin,
                 double xmax, double ymax, int bits, uint64_t[::1] out):
    """Hilbert keys of points in the box [xmin, xmax] x [ymin, ymax].

    Parameters
    ----------
    x, y : float64 arrays of length n
        Positions.
    xmin, ymin, xmax, ymax : float
        The bounding box (the same on every rank, so keys are global).
    bits : int
        Bits per coordinate, 1..32 (a key has 2*bits bits).
    out : uint64 array of length n
        Receives the keys.
    """
    cdef Py_ssize_t i, n = x.shape[0]
    if bits < 1 or bits > 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    if y.shape[0] != n or out.shape[0] != n:
        raise ValueError("x, y and out must have the same length")
    cdef uint64_t top = ((<uint64_t>1) << bits) - 1
    cdef double side = 2.0 ** bits
    # A degenerate box (all points on a line) still gets a positive extent.
    cdef double sx = side / (xmax - xmin) if xmax > xmin else 0.0
    cdef double sy = side / (ymax - ymin) if ymax > ymin else 0.0
    with nogil:
        for i in range(n):
            out[i] = hilbert_d(_cell(x[i], xmin, sx, top), _cell(y[i], ymin, sy, top), bits)


def hilbert_cells(const int64_t[:] cx, const int64_t[:] cy, int bits, uint64_t[::1] out):
    """Hilbert keys of integer cells (cx, cy) on a 2**bits grid (for tests and tools)."""
    cdef Py_ssize_t i, n = cx.shape[0]
    if bits < 1 or bits > 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    with nogil:
        for i in range(n):
            out[i] = hilbert_d(<uint64_t>cx[i], <uint64_t>cy[i], bits)
