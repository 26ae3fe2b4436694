"""Kernel selection: the compiled Cython kernels or their numpy twins. Local."""

from __future__ import annotations

import functools
import importlib
from types import SimpleNamespace

KERNEL_MODULES = ("b1", "clusters", "defi", "exactsum", "formation", "hilbert", "knn", "risk",
                  "rng", "subsets")


def load(backend: str = "cython") -> SimpleNamespace:
    """Namespace of kernel modules (``ns.b1``, ``ns.rng`` ...) for ``backend``.

    Raises ImportError with the build command when the Cython kernels are missing.
    """
    if backend not in ("cython", "numpy"):
        raise ValueError(f"backend must be 'cython' or 'numpy', got {backend!r}")
    package = "tokensim_hpc._kernels" if backend == "cython" else "tokensim_hpc.numpy_kernels"
    try:
        return SimpleNamespace(**{m: importlib.import_module(f"{package}.{m}")
                                  for m in KERNEL_MODULES})
    except ImportError as exc:
        raise ImportError(f"{exc}; build the Cython kernels with `make build` "
                          "(or `python setup.py build_ext --inplace`)") from exc


@functools.cache
def compiled() -> SimpleNamespace:
    """The compiled kernels, loaded once: what the engine and the risk measures' own
    machinery run whatever the model's ``engine.backend`` (initialisation, sub-domains,
    transposed products)."""
    return load("cython")
