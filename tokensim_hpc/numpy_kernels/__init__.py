"""Numpy twins of the Cython kernels.

Each module here mirrors ``tokensim_hpc._kernels.<name>`` function for
function, with the same arguments and results. Tests compare the two, and
``engine.backend = "numpy"`` runs the step path on these twins.
"""
