"""Benchmark the tokenized economy (built-in scenario ``defi``): time per phase.

Run it under MPI; it prints one JSON line per backend (rank 0), with the
same fields as ``b1.py``:

    mpirun -n 2 python benchmarks/defi.py --n 1000000 --ticks 24

``--ticks 24`` is one simulated day. Phases (seconds, max over ranks):
``halo+kernel`` (sentiment halo exchange overlapped with the order kernel),
``reduce`` (the exact reductions of order flow, holdings and wealth),
``clearing`` (the replicated pool updates), ``kernel`` (the fills), and the
initialisation phases. No output file is written.
"""

from __future__ import annotations

from common import main

if __name__ == "__main__":
    main("defi", __doc__, default_ticks=24)
