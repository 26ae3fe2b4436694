#!/usr/bin/env bash
# The B1 figures of benchmarks/README.md: N = 1e5, 1e6, 1e7 on 1 and 2 ranks
# with the Cython backend, then Cython against numpy in one run (N = 1e6,
# 2 ranks). One JSON line per run on stdout.
#
#   bash benchmarks/matrix.sh | tee benchmarks/results-b1.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none"
for n in 100000 1000000 10000000; do
  ticks=50
  [ "$n" = 10000000 ] && ticks=20
  for np in 1 2; do
    $MPIRUN -n "$np" "$PY" benchmarks/b1.py --n "$n" --ticks "$ticks" --backend cython
  done
done
# Both backends in the same run (the numpy twin takes about 3 s a tick here).
$MPIRUN -n 2 "$PY" benchmarks/b1.py --n 1000000 --ticks 10 --backend cython,numpy
