"""TokenSim-HPC: an MPI simulator of tokenized economies.

SPMD ranks own contiguous ranges of the global Hilbert order of agents,
Cython kernels step the agents, halo exchanges carry network edges that
cross partitions, and exact collective reductions make every result
bit-identical whatever the number of ranks.

Public API (imported on first use, so that reading output needs no MPI):

- :func:`resolve` - a validated :class:`Scenario` from a file or built-in name
- :class:`Simulation` - run a scenario on a communicator (collective)
- :func:`open_run` - read a run file (pandas time series, numpy snapshots)
"""

__version__ = "0.1.0"

_LAZY = {
    "resolve": ("tokensim_hpc.scenario", "resolve"),
    "Scenario": ("tokensim_hpc.scenario", "Scenario"),
    "Simulation": ("tokensim_hpc.engine", "Simulation"),
    "open_run": ("tokensim_hpc.io.reader", "open_run"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tokensim_hpc' has no attribute {name!r}")
