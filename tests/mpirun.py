"""Running the simulator under a real ``mpirun`` from the tests (helper module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mpi_env(**extra) -> dict:
    """Environment for mpirun as root on a small machine, with the repo importable."""
    env = dict(os.environ)
    env.update({
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMPI_MCA_mpi_yield_when_idle": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    })
    env.update(extra)
    return env


def mpirun(n: int, args: list[str], timeout: float = 180, cwd=None,
           **env) -> subprocess.CompletedProcess:
    """``mpirun -n N python ARGS``; returns the completed process (never hangs past timeout)."""
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(n), sys.executable, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or REPO, env=mpi_env(**env))


def simulate(n: int, out: Path, *sets: str, timeout: float = 180,
             scenario: str = "b1") -> subprocess.CompletedProcess:
    """Run a scenario (built-in B1 unless told) on n ranks into ``out`` with ``--set``
    overrides; assert success."""
    args = ["-m", "tokensim_hpc", "run", scenario, "-o", str(out), "--overwrite", "--quiet"]
    for s in sets:
        args += ["--set", s]
    proc = mpirun(n, args, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
