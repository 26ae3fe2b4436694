"""The communication layer: the only modules of the package that import mpi4py.

``mpi``: the world communicator, fail-fast error handling, rank-0 decisions.
``reduce``: exact floating-point sums, bit-identical on any rank count.
``partition``: the parallel Hilbert sort that gives each rank its block.
``directory``: which rank owns a global id.
``knn``: the distributed exact k-nearest-neighbour graph.
``halo``: ghost-slot exchange of agent columns along network edges.
"""
