"""Exact, order-independent sums of doubles: numpy twin and shared helpers.

Numpy twin of ``tokensim_hpc._kernels.exactsum`` (same functions, same
accumulators after `normalize`), and home of the pure-Python helpers that
both backends use: `normalize`, `to_double` and `to_doubles`.

Accumulator
-----------
An accumulator is an int64 array of ``NACC = 71`` slots (a 2-D array of shape
(nrows, NACC) holds one per row):

* limbs 0..67 hold a signed fixed-point integer S with ``S * 2**-1074`` equal
  to the exact sum of the finite values added; limb j weighs ``2**(32*j)``.
  Every finite double is an integer multiple of 2**-1074, so the sum is
  represented exactly.
* slots 68, 69, 70 count the NaNs, +infs and -infs added.

Adding is integer addition, which is associative: the accumulator of a set of
values does not depend on their order, and the limb-wise integer sum of the
accumulators of disjoint parts (e.g. an MPI ``Allreduce(SUM)`` over ranks of
normalized accumulators) is the accumulator of the whole. `to_double` then
rounds the exact sum once, correctly (round-half-even), so the result is
bit-identical on any number of ranks and equals ``math.fsum`` of the values.

Overflow rule
-------------
Each added value changes a limb by less than 2**32, so from a normalized
state a limb absorbs at least 2**31 - 2 values before int64 overflow is
possible. The ``accumulate*`` functions add in chunks of at most
``ACC_CHUNK = 2**30`` values and normalize before each chunk when a call adds
more than that; between calls, normalize at least once every 2**30 added
values (e.g. once per tick) and always before summing accumulators across
ranks (R normalized accumulators sum to limbs < R * 2**32).

Signed zeros are not tracked: an exact sum of zero is returned as +0.0 (as
``math.fsum`` does).
"""

import math

import numpy as np

__all__ = [
    "NACC",
    "NLIMBS",
    "SLOT_NAN",
    "SLOT_PINF",
    "SLOT_NINF",
    "ACC_CHUNK",
    "accumulate",
    "accumulate_changes",
    "accumulate_grouped",
    "accumulate_rows",
    "normalize",
    "to_double",
    "to_doubles",
]

NACC = 71
NLIMBS = 68
SLOT_NAN = 68
SLOT_PINF = 69
SLOT_NINF = 70
ACC_CHUNK = 1 << 30
_SCALE = 1 << 1074  # S * 2**-1074 is the sum

# Values added between normalizations within one call; lowered only by the
# tests (`_set_chunk`) to exercise the chunked path on small inputs.
_chunk = ACC_CHUNK
# Values decomposed per vectorized pass (bounds temporary memory).
_BLOCK = 1 << 18
# Dense bincount over all limbs of all rows up to this many bins per pass.
_DENSE_BINS = 1 << 21

_U = np.uint64
_MANT = _U((1 << 52) - 1)
_MASK32 = _U(0xFFFFFFFF)


def _set_chunk(chunk):
    """Set the chunk length (testing only); returns the previous one."""
    global _chunk
    chunk = int(chunk)
    if not 1 <= chunk <= ACC_CHUNK:
        raise ValueError(f"chunk must be in [1, {ACC_CHUNK}]")
    old, _chunk = _chunk, chunk
    return old


def _as_rows(acc):
    """2-D (nrows, NACC) int64 view of a 1-D or 2-D accumulator array."""
    if not isinstance(acc, np.ndarray) or acc.dtype != np.int64:
        raise TypeError("an accumulator must be a numpy int64 array")
    if acc.ndim == 1:
        acc = acc[np.newaxis, :]
    if acc.ndim != 2 or acc.shape[1] != NACC:
        raise ValueError(f"an accumulator must have shape (NACC,) or (nrows, NACC), NACC={NACC}")
    return acc


def normalize(acc):
    """Propagate carries in place so that limbs 0..66 lie in [0, 2**32).

    Limb 67 then carries the sign (it is negative iff the sum is); the value
    ``sum_j acc[j] * 2**(32*j)`` and the NaN/inf counts are unchanged. Uses
    floor semantics: ``v & 0xffffffff`` is the non-negative remainder and the
    arithmetic shift ``v >> 32`` the floor quotient, also for negative v.

    Parameters
    ----------
    acc : ndarray of int64, shape (NACC,) or (nrows, NACC)
        Accumulator(s), modified in place.

    Returns
    -------
    ndarray
        ``acc`` itself.
    """
    a = _as_rows(acc)
    carry = np.zeros(a.shape[0], dtype=np.int64)
    for k in range(NLIMBS - 1):
        v = a[:, k] + carry
        a[:, k] = v & 0xFFFFFFFF
        carry = v >> 32
    a[:, NLIMBS - 1] += carry
    return acc


def _finish(row):
    """Correctly rounded double of one *normalized* accumulator row."""
    nan, pinf, ninf = int(row[SLOT_NAN]), int(row[SLOT_PINF]), int(row[SLOT_NINF])
    if nan or (pinf and ninf):
        return math.nan
    if pinf:
        return math.inf
    if ninf:
        return -math.inf
    # Normalized limbs 0..66 are 32-bit digits: read them as one little-endian
    # unsigned integer, then add the signed top limb.
    s = int.from_bytes(row[: NLIMBS - 1].astype("<u4").tobytes(), "little")
    s += int(row[NLIMBS - 1]) << (32 * (NLIMBS - 1))
    try:
        # CPython's int / int is correctly rounded (round-half-even), also
        # for subnormal results; it raises OverflowError exactly when the
        # rounded result is too large for a double.
        return s / _SCALE
    except OverflowError:
        return math.inf if s > 0 else -math.inf


def to_double(acc):
    """Correctly rounded double of the sum held in one accumulator.

    Parameters
    ----------
    acc : ndarray of int64, shape (NACC,)
        An accumulator, normalized or not (it is not modified).

    Returns
    -------
    float
        NaN if a NaN was added or both +inf and -inf were; else +inf or -inf
        if one of them was; else the exact sum rounded to the nearest double,
        ties to even, +inf or -inf if that overflows. An exact zero is +0.0.
    """
    a = np.asarray(acc)
    if a.dtype != np.int64 or a.shape != (NACC,):
        raise ValueError(f"to_double needs one int64 accumulator of shape ({NACC},)")
    return _finish(normalize(a.copy()))


def to_doubles(acc2d):
    """`to_double` of each row of a (nrows, NACC) accumulator array.

    Parameters
    ----------
    acc2d : ndarray of int64, shape (nrows, NACC)
        Accumulators, normalized or not (not modified).

    Returns
    -------
    ndarray of float64, shape (nrows,)
    """
    a = np.asarray(acc2d)
    if a.dtype != np.int64 or a.ndim != 2 or a.shape[1] != NACC:
        raise ValueError(f"to_doubles needs an int64 array of shape (nrows, {NACC})")
    a = normalize(a.copy())
    return np.array([_finish(row) for row in a], dtype=np.float64).reshape(a.shape[0])


def _entries(x, row):
    """Decompose doubles into (flat slot index, int64 value) additions.

    Parameters
    ----------
    x : ndarray of float64, shape (n,)
    row : ndarray of intp, shape (n,)
        Accumulator row of each value.

    Returns
    -------
    idx, val : ndarray of intp and int64
        ``acc.reshape(-1)[idx[k]] += val[k]`` for all k adds the values,
        exactly like ``acc_add`` of ``_exactsum.pxd``.
    """
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    bexp = (bits >> _U(52)) & _U(0x7FF)
    mant = bits & _MANT
    neg = (bits >> _U(63)).astype(bool)
    special = bexp == _U(0x7FF)
    base = row.astype(np.intp) * NACC
    # Same decomposition as acc_add: normals m = mantissa | 2**52 at bit
    # position b = bexp - 1; subnormals and zeros m = mantissa at b = 0.
    nz = (bexp != 0).astype(np.uint64)
    m = mant | (nz << _U(52))
    b = bexp - nz
    j = (b >> _U(5)).astype(np.intp)
    shift = b & _U(31)
    # Low 32 bits of m << shift (the wrap modulo 2**64 only drops high bits),
    # and the rest m >> (32 - shift), a shift by 1..32.
    p0 = (m << shift) & _MASK32
    rest = m >> (_U(32) - shift)
    p1 = rest & _MASK32
    p2 = rest >> _U(32)
    # Sign as +1/-1; NaN and infs add nothing to the limbs (sign 0) ...
    sgn = np.where(neg, -1, 1).astype(np.int64)
    sgn[special] = 0
    idx = [base + j, base + j + 1, base + j + 2]
    val = [p0.astype(np.int64) * sgn, p1.astype(np.int64) * sgn, p2.astype(np.int64) * sgn]
    # ... and are counted in slots 68..70 instead.
    if special.any():
        sp_slot = np.where(
            mant[special] != 0, SLOT_NAN, np.where(neg[special], SLOT_NINF, SLOT_PINF)
        )
        idx.append(base[special] + sp_slot)
        val.append(np.ones(sp_slot.shape[0], dtype=np.int64))
    return np.concatenate(idx), np.concatenate(val)


def _add_entries(flat, idx, val):
    """``flat[idx] += val`` with repeated indices summed, exactly in int64."""
    nbins = flat.shape[0]
    if nbins <= max(_DENSE_BINS, 2 * idx.shape[0]):
        # Dense: np.bincount sums float64 weights, which is exact only while
        # every partial sum stays below 2**53. Split each value into a 16-bit
        # digit lo = v & 0xffff (in [0, 2**16)) and hi = v >> 16 (arithmetic,
        # |hi| <= 2**16), v = hi * 2**16 + lo; with at most 4 * _BLOCK
        # entries per pass all sums stay below 2**37, hence exact.
        lo = np.bincount(idx, weights=(val & 0xFFFF).astype(np.float64), minlength=nbins)
        hi = np.bincount(idx, weights=(val >> 16).astype(np.float64), minlength=nbins)
        flat += lo.astype(np.int64) + (hi.astype(np.int64) << 16)
    else:
        # Sparse (many accumulator rows): sort by index and sum runs of equal
        # indices in int64 with reduceat; the run heads are unique indices,
        # so the fancy-indexed += below does not drop repeats.
        order = np.argsort(idx, kind="stable")
        k = idx[order]
        heads = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
        flat[k[heads]] += np.add.reduceat(val[order], heads)


def _accumulate(x, row, acc2d, per_value, n_values):
    """Add flattened values ``x`` to rows ``row`` of ``acc2d`` in chunks.

    ``n_values`` counts the adds each accumulator row may receive from this
    call (the chunking unit of the Cython kernel) and ``per_value`` the
    entries of ``x`` per unit (1, or ncols for `accumulate_rows`), so the
    normalizations happen at the same points as in the kernel.
    """
    if not acc2d.flags.c_contiguous:
        raise ValueError("acc must be C-contiguous")
    flat = acc2d.reshape(-1)
    chunk = _chunk
    for start in range(0, n_values, chunk):
        stop = min(start + chunk, n_values)
        if n_values > chunk:
            normalize(acc2d)
        for s in range(start * per_value, stop * per_value, _BLOCK):
            e = min(s + _BLOCK, stop * per_value)
            idx, val = _entries(x[s:e], row[s:e])
            _add_entries(flat, idx, val)


def _check_acc(acc, ndim):
    if not isinstance(acc, np.ndarray) or acc.dtype != np.int64 or acc.ndim != ndim:
        raise TypeError(f"acc must be a {ndim}-D numpy int64 array")
    if acc.shape[-1] != NACC:
        raise ValueError(f"acc must have {NACC} columns, got {acc.shape[-1]}")


def accumulate(x, acc):
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
    _check_acc(acc, 1)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("x must be one-dimensional")
    n = x.shape[0]
    _accumulate(x, np.zeros(n, dtype=np.intp), acc[np.newaxis, :], 1, n)


def accumulate_changes(new, old, acc):
    """Add every ``new[i] - old[i]`` exactly to ``acc``: twin of the kernel's
    ``accumulate_changes`` (here ``new`` and then ``-old`` are added)."""
    new = np.asarray(new, dtype=np.float64)
    old = np.asarray(old, dtype=np.float64)
    if new.shape != old.shape:
        raise ValueError("new and old must have the same length")
    accumulate(new, acc)
    accumulate(-old, acc)


def accumulate_grouped(x, group, acc):
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
    _check_acc(acc, 2)
    x = np.asarray(x, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    n, nrows = x.shape[0], acc.shape[0]
    if group.shape != (n,):
        raise ValueError(f"group has length {group.shape[0]}, x has length {n}")
    bad = np.flatnonzero((group < 0) | (group >= nrows))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"group[{i}] = {group[i]} is not in [0, {nrows})")
    _accumulate(x, group.astype(np.intp), acc, 1, n)


def accumulate_rows(x, acc):
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
    _check_acc(acc, 2)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("x must be two-dimensional")
    n, ncols = x.shape
    if acc.shape[0] != ncols:
        raise ValueError(f"acc must have {ncols} rows (one per column of x), got {acc.shape[0]}")
    flat_x = np.ascontiguousarray(x).reshape(-1)
    row = np.tile(np.arange(ncols, dtype=np.intp), n)
    _accumulate(flat_x, row, acc, ncols, n)
