#!/usr/bin/env bash
# The B1 figures of benchmarks/README.md: N = 1e5, 1e6, 1e7 on 1 and 2 ranks,
# Cython backend, plus the numpy backend at N = 1e6 on 2 ranks (same run as
# its Cython figure). One JSON line per run on stdout.
#
#   bash benchmarks/matrix.sh > benchmarks/results-b1.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none"
for n in 100000 1000000 10000000; do
  ticks=50
  [ "$n" = 10000000 ] && ticks=10
  for np in 1 2; do
    backend=cython
    [ "$n" = 1000000 ] && [ "$np" = 2 ] && backend=cython,numpy
    [ "$backend" = cython,numpy ] && ticks_run=10 || ticks_run=$ticks
    $MPIRUN -n "$np" "$PY" benchmarks/b1.py --n "$n" --ticks "$ticks_run" --backend "$backend"
  done
done
