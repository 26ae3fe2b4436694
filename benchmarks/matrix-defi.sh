#!/usr/bin/env bash
# The defi figures of benchmarks/README.md: one simulated day (24 ticks) of the
# built-in economy with N = 1e5, 1e6, 1e7 agents on 2 ranks (and 1e6 on 1 rank).
# One JSON line per run on stdout.
#
#   bash benchmarks/matrix-defi.sh | tee benchmarks/results-defi.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --bind-to none"
for n in 100000 1000000 10000000; do
  $MPIRUN -n 2 "$PY" benchmarks/defi.py --n "$n" --ticks 24
done
$MPIRUN -n 1 "$PY" benchmarks/defi.py --n 1000000 --ticks 24
