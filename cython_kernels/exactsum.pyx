"""Exact, order-independent sums of doubles into int64 accumulators.

Python-callable loops around ``acc_add`` and ``acc_add_block`` of
``_exactsum.pxd`` (see there for the accumulator layout). The numpy twin is
``tokensim_hpc.numpy_kernels.exactsum``, which also holds the pure-Python
helpers `normalize`, `to_double` and `to_doubles` shared by both backends and
re-exported here.

Overflow rule: every function below adds its values in chunks of at most
2**30 (``ACC_CHUNK``) and, when a call adds more than that, normalizes the
accumulator(s) before each chunk. Between calls the caller must normalize at
least once every 2**30 added values (e.g. once per tick, and always before
summing accumulators across ranks).
"""

from libc.stdint cimport int64_t

cimport _exactsum as es
from _exactsum cimport (AccStage, acc_add, acc_add_block, acc_normalize, stage_add_diff,
                        stage_close, stage_open)

import numpy as np

from tokensim_hpc.numpy_kernels.exactsum import _finish, to_double

__all__ = [
    "NACC", "NLIMBS", "SLOT_NAN", "SLOT_PINF", "SLOT_NINF", "ACC_CHUNK",
    "accumulate", "accumulate_changes", "accumulate_grouped", "accumulate_rows",
    "normalize", "to_double", "to_doubles",
]

NACC = es.NACC
NLIMBS = es.NLIMBS
SLOT_NAN = es.SLOT_NAN
SLOT_PINF = es.SLOT_PINF
SLOT_NINF = es.SLOT_NINF
ACC_CHUNK = es.ACC_CHUNK

# Values added between normalizations within one call; lowered only by the
# tests (`_set_chunk`) to exercise the chunked path on small inputs.
cdef Py_ssize_t _chunk = es.ACC_CHUNK


def _set_chunk(Py_ssize_t chunk):
    """Set the chunk length (testing only); returns the previous one."""
    global _chunk
    if chunk < 1 or chunk > es.ACC_CHUNK:
        raise ValueError(f"chunk must be in [1, {es.ACC_CHUNK}]")
    old = _chunk
    _chunk = chunk
    return old


cdef inline void _normalize_rows(int64_t[:, ::1] acc) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(acc.shape[0]):
        acc_normalize(&acc[r, 0])


def normalize(acc):
    """Compiled twin of ``numpy_kernels.exactsum.normalize`` (same result, in place).

    The per-tick reductions normalise before and after every Allreduce; the
    C carry loop takes well under a microsecond where the numpy one takes
    hundreds.
    """
    a = np.asarray(acc)
    if a.dtype != np.int64 or a.shape[a.ndim - 1] != es.NACC or a.ndim not in (1, 2) \
            or not a.flags.c_contiguous:
        raise ValueError(f"normalize needs contiguous int64 accumulators of shape "
                         f"(..., {es.NACC})")
    cdef int64_t[:, ::1] rows = a.reshape(-1, es.NACC)
    with nogil:
        _normalize_rows(rows)
    return acc


def to_doubles(acc2d):
    """Compiled twin of ``numpy_kernels.exactsum.to_doubles`` (acc2d not modified)."""
    a = np.asarray(acc2d)
    if a.dtype != np.int64 or a.ndim != 2 or a.shape[1] != es.NACC:
        raise ValueError(f"to_doubles needs an int64 array of shape (nrows, {es.NACC})")
    a = normalize(a.copy())
    return np.array([_finish(row) for row in a], dtype=np.float64).reshape(a.shape[0])


def accumulate(const double[:] x, int64_t[::1] acc):
    """Add every element of ``x`` exactly to the accumulator ``acc``.

    Parameters
    ----------
    x : ndarray of float64, shape (n,)
        Values; NaN and infinities are counted in slots 68..70.
    acc : ndarray of int64, shape (NACC,), contiguous
        The accumulator, updated in place. Not normalized on return unless
        the call added more than 2**30 values.

    Raises
    ------
    ValueError
        If ``acc`` does not have length NACC.
    """
    if acc.shape[0] != es.NACC:
        raise ValueError(f"acc must have length {es.NACC}, got {acc.shape[0]}")
    cdef Py_ssize_t i, b, b_stop, stop, start = 0, n = x.shape[0], chunk = _chunk
    cdef Py_ssize_t block = es.ACC_BLOCK_MAX
    cdef int64_t* a = &acc[0]
    cdef double buf[es.ACC_BLOCK_MAX]
    with nogil:
        while start < n:
            stop = start + chunk if n - start > chunk else n
            if n > chunk:
                acc_normalize(a)
            # Blocks through a contiguous buffer (x may be strided).
            b = start
            while b < stop:
                b_stop = b + block if stop - b > block else stop
                for i in range(b, b_stop):
                    buf[i - b] = x[i]
                acc_add_block(a, buf, b_stop - b)
                b = b_stop
            start = stop


def accumulate_changes(const double[:] new, const double[:] old, int64_t[::1] acc):
    """Add every ``new[i] - old[i]`` exactly to ``acc``, the way the kernels add their
    holdings' changes: ``new`` and ``-old`` staged (``AccStage``, one row) and added a
    block at a time. The same sum as adding ``new`` and ``-old``, NaN and infinities
    counted as ``acc_add`` counts them.

    Raises
    ------
    ValueError
        If ``acc`` does not have length NACC, or ``new`` and ``old`` differ in length.
    """
    if acc.shape[0] != es.NACC:
        raise ValueError(f"acc must have length {es.NACC}, got {acc.shape[0]}")
    if new.shape[0] != old.shape[0]:
        raise ValueError("new and old must have the same length")
    cdef Py_ssize_t i, stop, start = 0, n = new.shape[0], chunk = _chunk // 2 if _chunk > 1 else 1
    cdef int64_t* a = &acc[0]
    cdef AccStage st
    with nogil:
        while start < n:
            # Each change counts as two adds towards the normalisation rule.
            stop = start + chunk if n - start > chunk else n
            if n > chunk:
                acc_normalize(a)
            if stage_open(&st, a, 1) != 0:
                with gil:
                    raise MemoryError()
            for i in range(start, stop):
                stage_add_diff(&st, 0, new[i], old[i])
            stage_close(&st)
            start = stop


def accumulate_grouped(const double[:] x, const int64_t[:] group, int64_t[:, ::1] acc):
    """Add each ``x[i]`` exactly to the accumulator row ``acc[group[i]]``.

    Parameters
    ----------
    x : ndarray of float64, shape (n,)
        Values.
    group : ndarray of int64, shape (n,)
        Row of each value, in [0, nrows).
    acc : ndarray of int64, shape (nrows, NACC), C-contiguous
        One accumulator per row, updated in place (normalized only when the
        call added more than 2**30 values).

    Raises
    ------
    ValueError
        On mismatched shapes or a group outside [0, nrows); ``acc`` is then
        left unchanged.
    """
    cdef Py_ssize_t i, stop, start = 0, n = x.shape[0], chunk = _chunk
    cdef Py_ssize_t nrows = acc.shape[0], bad = -1
    cdef int64_t g
    if acc.shape[1] != es.NACC:
        raise ValueError(f"acc must have {es.NACC} columns, got {acc.shape[1]}")
    if group.shape[0] != n:
        raise ValueError(f"group has length {group.shape[0]}, x has length {n}")
    with nogil:
        # Validate first, so that a bad group leaves acc untouched (the loop
        # below runs without bounds checks).
        for i in range(n):
            g = group[i]
            if g < 0 or g >= nrows:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"group[{bad}] = {group[bad]} is not in [0, {nrows})")
    with nogil:
        while start < n:
            stop = start + chunk if n - start > chunk else n
            if n > chunk:
                _normalize_rows(acc)
            for i in range(start, stop):
                acc_add(&acc[group[i], 0], x[i])
            start = stop


def accumulate_rows(const double[:, :] x, int64_t[:, ::1] acc):
    """Add column ``c`` of ``x`` exactly to the accumulator row ``acc[c]``.

    For summing several quantities at once: row ``i`` of ``x`` holds one
    agent's values of the ``ncols`` quantities.

    Parameters
    ----------
    x : ndarray of float64, shape (n, ncols)
        Values.
    acc : ndarray of int64, shape (ncols, NACC), C-contiguous
        One accumulator per column of ``x``, updated in place (normalized
        only when the call added more than 2**30 values to each).

    Raises
    ------
    ValueError
        On mismatched shapes.
    """
    cdef Py_ssize_t i, c, stop, start = 0, n = x.shape[0], chunk = _chunk
    cdef Py_ssize_t ncols = x.shape[1]
    if acc.shape[1] != es.NACC:
        raise ValueError(f"acc must have {es.NACC} columns, got {acc.shape[1]}")
    if acc.shape[0] != ncols:
        raise ValueError(f"acc must have {ncols} rows (one per column of x), "
                         f"got {acc.shape[0]}")
    with nogil:
        while start < n:
            stop = start + chunk if n - start > chunk else n
            if n > chunk:
                _normalize_rows(acc)
            for i in range(start, stop):
                for c in range(ncols):
                    acc_add(&acc[c, 0], x[i, c])
            start = stop
