"""TokenSim-HPC: an MPI simulator of tokenized economies.

SPMD ranks own contiguous ranges of the global Hilbert order of agents,
Cython kernels step the agents, halo exchanges carry network edges that
cross partitions, and exact collective reductions make every result
bit-identical whatever the number of ranks.
"""

__version__ = "0.1.0"
