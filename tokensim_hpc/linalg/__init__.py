"""Distributed sparse linear algebra over the agent network (the only package that
imports petsc4py).

``petsc``: PETSc set-up with the ``tokensim_`` options, the exposure matrix
(MPIAIJ, rows owned as the engine owns agents), Krylov solves, and the
registry that makes sure every PETSc object is destroyed.
"""

from .petsc import (
    PREFIX,
    ExposureMatrix,
    MatrixOwner,
    TransposeSolver,
    initialize,
    live_objects,
    slot_positions,
    split_command_line,
)

__all__ = ["PREFIX", "ExposureMatrix", "MatrixOwner", "TransposeSolver", "initialize",
           "live_objects", "slot_positions", "split_command_line"]
