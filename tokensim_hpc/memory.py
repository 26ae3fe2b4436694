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
"""

from __future__ import annotations

import ctypes
import ctypes.util

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
