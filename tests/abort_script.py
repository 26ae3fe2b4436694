"""Rank 1 raises while rank 0 waits in a collective: the abort hook must end the job."""

import sys

from tokensim_hpc.parallel.mpi import install_abort_hook, world

comm = world()
install_abort_hook(comm)
if comm.rank == 1:
    raise RuntimeError("injected failure on rank 1")
comm.Barrier()  # rank 0 would wait here forever without the abort
print("unreachable: the barrier completed", file=sys.stderr)
