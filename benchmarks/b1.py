"""Benchmark B1 (shared/benchmark-B1.md): throughput, initialisation time, memory.

Run it under MPI; it prints one JSON line per backend (rank 0):

    mpirun -n 2 python benchmarks/b1.py --n 1000000 --ticks 50 --backend cython,numpy

Fields: n, ranks, ticks, backend, init_s (positions, Hilbert sort, k-NN,
rewiring, halo plan), run_s (the ticks only), agent_ticks_per_s = n*ticks/run_s,
phase seconds (max over ranks), peak_rss_mb (max over ranks),
total_peak_rss_mb (sum over ranks), baseline_rss_mb (sum over ranks, after
imports, before any agent exists), bytes_per_agent =
(total_peak_rss - baseline_rss) / n, and bytes_per_agent_total = total_peak_rss / n.
Memory figures are high-water marks of the process: with several backends
in one run, those of the first backend are the ones to quote.
No output file is written (output is measured separately).
"""

from __future__ import annotations

from common import main

if __name__ == "__main__":
    main("b1", __doc__, default_ticks=50)
