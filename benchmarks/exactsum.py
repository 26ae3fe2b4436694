"""The exact sums alone: ns per value, in one process. Prints one JSON line:

    python benchmarks/exactsum.py --n 1000000

- ``block_ns``: ``accumulate`` (blocks of 1024 values through ``acc_add_block``);
- ``per_value_ns``: ``accumulate_grouped`` into one row (one ``acc_add`` per value);
- ``changes_ns``: ``accumulate_changes`` per (new, old) pair (new and -old staged and
  added a block at a time, ``AccStage``, as the fills and portfolios add their
  changes), against ``two_adds_ns``, the same pairs as two per-value adds (new and
  -old), the way the fills added them two rounds ago.

The pairs are holdings moved by up to 5 % (a fill); each figure is the best of
``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tokensim_hpc._kernels import exactsum as es  # noqa: E402


def best_ns(fn, n_values, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(min(times) / n_values * 1e9, 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="values (pairs) per call")
    p.add_argument("--repeat", type=int, default=5, help="calls per figure")
    args = p.parse_args()
    rs = np.random.default_rng(1)
    old = rs.uniform(1.0, 1000.0, args.n)
    new = old * (1.0 + rs.uniform(-0.05, 0.05, args.n))
    pairs = np.empty(2 * args.n)
    pairs[0::2], pairs[1::2] = new, -old
    one_group = np.zeros(2 * args.n, dtype=np.int64)
    acc = np.zeros((1, es.NACC), dtype=np.int64)
    out = {
        "benchmark": "exactsum", "n": args.n,
        "block_ns": best_ns(lambda: es.accumulate(old, acc[0]), args.n, args.repeat),
        "per_value_ns": best_ns(lambda: es.accumulate_grouped(old, one_group[:args.n], acc),
                                args.n, args.repeat),
        "changes_ns": best_ns(lambda: es.accumulate_changes(new, old, acc[0]), args.n,
                              args.repeat),
        "two_adds_ns": best_ns(lambda: es.accumulate_grouped(pairs, one_group, acc), args.n,
                               args.repeat),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
