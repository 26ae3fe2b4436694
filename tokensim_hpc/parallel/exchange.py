"""Typed all-to-all exchanges of numpy arrays (the bulk data path).

Buffer (upper-case) collectives only: counts go by ``Alltoall``, data by
``Alltoallv`` with the array's own MPI datatype, rows of 2-D arrays as one
contiguous datatype. Every function is collective on ``comm`` and must be
entered by every rank, including ranks that send nothing.
"""

from __future__ import annotations

import functools

import numpy as np
from mpi4py.util import dtlib

_INT_MAX = 2**31 - 1


@functools.cache
def _element_type(dtype: np.dtype):
    """The MPI datatype of one element (predefined for numpy's number types: looked up
    once, nothing to free)."""
    return dtlib.from_numpy_dtype(dtype)


def mpi_type(dtype: np.dtype, width: int = 1):
    """MPI datatype of one row of ``width`` elements of ``dtype``; free it if width > 1."""
    base = _element_type(np.dtype(dtype))
    if width == 1:
        return base
    row = base.Create_contiguous(width)
    row.Commit()
    return row


def exchange_counts(comm, send_counts: np.ndarray) -> np.ndarray:
    """How many rows each rank sends to me, given how many I send to each. Collective."""
    send_counts = np.ascontiguousarray(send_counts, dtype=np.int64)
    recv_counts = np.empty_like(send_counts)
    comm.Alltoall(send_counts, recv_counts)
    return recv_counts


def displacements(counts: np.ndarray) -> np.ndarray:
    """Exclusive prefix sum of counts (int64)."""
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def alltoallv(comm, send: np.ndarray, send_counts: np.ndarray,
              recv_counts: np.ndarray | None = None) -> np.ndarray:
    """Send rows ``send[displ[r]:displ[r]+send_counts[r]]`` to rank r. Collective.

    ``send`` is 1-D or 2-D (rows), grouped by destination rank in rank order.
    Returns the received rows, grouped by source rank in rank order.
    """
    if recv_counts is None:
        recv_counts = exchange_counts(comm, send_counts)
    send = np.ascontiguousarray(send)
    width = 1 if send.ndim == 1 else int(np.prod(send.shape[1:]))
    # Counts and offsets as int32 (MPI's), one array each way: [counts, offsets].
    sc, rc = _counts_offsets(send_counts), _counts_offsets(recv_counts)
    recv = np.empty((int(rc[1, -1]) + int(rc[0, -1]),) + send.shape[1:], dtype=send.dtype)
    dtype = mpi_type(send.dtype, width)
    try:
        comm.Alltoallv([send, (sc[0], sc[1]), dtype], [recv, (rc[0], rc[1]), dtype])
    finally:
        if width > 1:
            dtype.Free()
    return recv


def _counts_offsets(counts: np.ndarray) -> np.ndarray:
    """[counts, exclusive prefix sums] as one int32 (2, ranks) array; an OverflowError
    when a count or an offset does not fit MPI's int."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.stack((counts, displacements(counts)))
    if counts.shape[0] and max(int(counts.max()), int(out[1, -1])) > _INT_MAX:
        raise OverflowError("an all-to-all message or its offset reaches 2**31 rows (MPI "
                            "counts and offsets are int); use more ranks")
    return out.astype(np.int32)


def alltoallv_columns(comm, columns: dict, send_counts: np.ndarray) -> dict:
    """:func:`alltoallv` of several columns with the same counts. Collective."""
    recv_counts = exchange_counts(comm, send_counts)
    return {name: alltoallv(comm, col, send_counts, recv_counts)
            for name, col in columns.items()}


def allgatherv(comm, local: np.ndarray) -> np.ndarray:
    """Concatenation over ranks, in rank order, of 1-D arrays. Collective."""
    local = np.ascontiguousarray(local)
    counts = np.array(comm.allgather(int(local.shape[0])), dtype=np.int64)
    out = np.empty(int(counts.sum()), dtype=local.dtype)
    dtype = mpi_type(local.dtype)
    comm.Allgatherv([local, dtype], [out, (counts.astype(np.int32),
                                           displacements(counts).astype(np.int32)), dtype])
    return out
