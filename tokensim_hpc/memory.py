"""Process memory settings: glibc's malloc, tuned per phase. Local; no MPI.

Initialisation: glibc raises its mmap threshold each time a large block is
freed, after which large temporaries (the initialisation's sort and exchange
buffers) come from the heap and stay resident after they are freed. A fixed
threshold of 128 KiB (:func:`return_freed_memory`, which also sets the trim
threshold back to 128 KiB) keeps large arrays in their own mappings,
returned to the system when freed, so the resident memory is what the live
arrays need.

Ticks: the step path's numpy temporaries (a few MB each at 10^6 agents a
rank) would then each be a fresh mapping whose every 4 KiB page faults on
first touch, about 3 us a page on the machines we measured (3 ms for one
4 MB temporary). :func:`reuse_freed_memory` serves blocks up to 256 MiB from
the heap and keeps up to 1 GiB of freed heap memory, so a tick reuses pages
the previous tick touched (figures in benchmarks/README.md).

Huge pages: numpy asks the kernel to back every array of 4 MiB or more with
2 MiB pages (madvise). That pays for arrays read at random over many ticks,
but where the first touch of a huge page is slow (about 2.8 ms a MB on the
machine of benchmarks/README.md, against 0.6 ms a MB in 4 KiB pages), work
that fills large temporaries once and reads them once loses by it: the
daily network rewiring and clustering run inside :func:`small_pages`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_INIT_MMAP_BYTES = 128 * 1024
_TICK_MMAP_BYTES = 256 * 2**20
_TICK_TRIM_BYTES = 2**30


def _mallopt(*settings) -> bool:
    """mallopt(param, value) for each pair; False where glibc is not available."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return all(bool(libc.mallopt(param, value)) for param, value in settings)
    except (OSError, AttributeError):
        return False


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 128 KiB, and its trim threshold at 128 KiB (undoing
    :func:`reuse_freed_memory`'s), for an initialisation; False where glibc is not
    available."""
    return _mallopt((_M_TRIM_THRESHOLD, _INIT_MMAP_BYTES), (_M_MMAP_THRESHOLD, _INIT_MMAP_BYTES))


def reuse_freed_memory() -> bool:
    """Serve blocks up to 256 MiB from the heap and keep up to 1 GiB of it when freed
    (the ticks); False where glibc is not available."""
    return _mallopt((_M_TRIM_THRESHOLD, _TICK_TRIM_BYTES), (_M_MMAP_THRESHOLD, _TICK_MMAP_BYTES))


def _hugepage_switch():
    """numpy's switch of its huge-page advice (``_set_madvise_hugepage``), or None."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            switch = getattr(importlib.import_module(module), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if switch is not None:
            return switch
    return None


@contextlib.contextmanager
def small_pages():
    """Arrays created inside are not advised onto huge pages (numpy's default is
    restored on leaving). For work whose large temporaries are touched once."""
    switch = _hugepage_switch()
    if switch is None:
        yield
        return
    previous = switch(False)
    try:
        yield
    finally:
        switch(previous)
