"""MPI set-up, fail-fast error handling and rank-0 decisions.

An uncaught exception on any rank prints its traceback once, prefixed with
the rank, and aborts the whole job (``MPI_Abort``) so that no rank is left
waiting in a collective. Errors that every rank would hit alike (a bad
scenario, an unusable output path) are decided on rank 0 and broadcast, so
they are printed once and every rank exits with the same status.
"""

from __future__ import annotations

import sys
import time
import traceback

from mpi4py import MPI

from ..errors import TokenSimError


def world():
    """The world communicator."""
    return MPI.COMM_WORLD


def install_abort_hook(comm=None) -> None:
    """Make an uncaught exception on any rank abort the whole job. Local."""
    comm = comm or MPI.COMM_WORLD

    def hook(exc_type, exc, tb):
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        prefix = f"[rank {comm.rank}/{comm.size}] "
        sys.stderr.write("".join(prefix + line + "\n" for line in text.rstrip().split("\n")))
        sys.stderr.write(f"{prefix}aborting the job (MPI_Abort) so no rank is left waiting\n")
        sys.stderr.flush()
        comm.Abort(1)

    sys.excepthook = hook


def decide_on_root(comm, fn, *args, **kwargs):
    """Run ``fn`` on rank 0 and broadcast its result, or its user error. Collective.

    A :class:`TokenSimError` raised on rank 0 is re-raised on every rank with
    the same message, so all ranks take the same exit path together.
    """
    result, error = None, None
    if comm.rank == 0:
        try:
            result = fn(*args, **kwargs)
        except TokenSimError as exc:
            error = exc
    result, error = comm.bcast((result, error), root=0)
    if error is not None:
        raise error
    return result


def exscan_int(comm, value: int) -> int:
    """Sum of ``value`` over lower ranks (0 on rank 0). Collective."""
    out = comm.exscan(int(value), op=MPI.SUM)
    return 0 if out is None else int(out)


def allreduce_min_max(comm, lo: float, hi: float) -> tuple[float, float]:
    """Global (min of lo, max of hi); exact, so order-independent. Collective."""
    import numpy as np

    buf = np.array([lo, -hi])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MIN)
    return float(buf[0]), float(-buf[1])


def allreduce_max_int(comm, value: int) -> int:
    """Global max of an integer. Collective."""
    return int(comm.allreduce(int(value), op=MPI.MAX))


def allreduce_any(comm, flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank. Collective."""
    return bool(comm.allreduce(bool(flag), op=MPI.LOR))


def min_over_ranks(comm, item):
    """The smallest of the ranks' items, None where a rank has none (None if all
    have none). For small Python objects such as (id, value) tuples. Collective."""
    items = [i for i in comm.allgather(item) if i is not None]
    return min(items) if items else None


def barrier(comm) -> None:
    """Barrier. Collective."""
    comm.Barrier()


def wtime() -> float:
    """Wall-clock time in seconds."""
    return time.perf_counter()
