"""Process memory settings. Local; no MPI.

glibc raises its mmap threshold each time a large block is freed, after
which large temporaries (the initialisation's sort and exchange buffers)
come from the heap and stay resident after they are freed. A fixed
threshold keeps large arrays in their own mappings, returned to the system
when freed, so the resident memory of a run is what its live arrays need.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3
_THRESHOLD_BYTES = 128 * 1024


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 128 KiB; False where glibc is not available."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
