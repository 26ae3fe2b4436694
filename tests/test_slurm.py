"""Run ``slurm/run.sbatch`` on a real single-node Slurm cluster.

The cluster (private munged, slurmctld and slurmd, all state in a temporary
folder) comes from :mod:`slurm_cluster`. The tests submit the user-facing batch
script with two tasks, with both launchers (``srun --mpi=pmix`` and ``mpirun``
inside the allocation), and check the HDF5 file the simulator writes, and that
a failing run makes the job FAILED.

Run them with ``make test-slurm`` or ``python -m pytest -q -m slurm tests``.
They need root and the Debian packages munge, slurmctld, slurmd and
slurm-client; without them they fail (they are never skipped).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from slurm_cluster import JobResult, SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "slurm" / "run.sbatch"
NTASKS = 2
TICKS = 5
# A run small enough for a 2-core machine: a few seconds per job.
SIM_ARGS = [
    "--overwrite",
    "--quiet",
    "--set",
    "agents.n=2000",
    "--set",
    f"run.ticks={TICKS}",
]
JOB_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    """One Slurm cluster for the whole module (it starts in about a second)."""
    with SlurmCluster(cpus=4) as slurm:
        yield slurm


def job_env(launcher: str = "srun", site_env: Path | str = "") -> dict[str, str]:
    """Environment for a ``run.sbatch`` job.

    Parameters
    ----------
    launcher : {"srun", "mpirun"}
        Value of ``TOKENSIM_LAUNCHER``.
    site_env : Path or str
        Value of ``TOKENSIM_SITE_ENV``; empty (the default) sources nothing, so a
        developer's own ``slurm/site-env.sh`` cannot change what is tested.

    Returns
    -------
    dict of str to str
        Variables to pass to :meth:`SlurmCluster.submit`.
    """
    return {
        # The interpreter running the tests has numpy, mpi4py and h5py.
        "TOKENSIM_PYTHON": sys.executable,
        "TOKENSIM_LAUNCHER": launcher,
        "TOKENSIM_SITE_ENV": str(site_env),
        # Two ranks may share a core on small machines: let mpirun place them
        # and let idle ranks yield instead of spinning.
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMPI_MCA_mpi_yield_when_idle": "1",
    }


def submit_run(
    cluster: SlurmCluster,
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
) -> JobResult:
    """Submit ``run.sbatch`` with ``NTASKS`` tasks from the repository root and wait.

    Submitting from the repository root is the documented usage, and it makes
    ``python -m tokensim_hpc`` find the package without installing it. The job
    output goes to ``tmp_path`` instead of the repository.
    """
    job_id = cluster.submit(
        SCRIPT,
        args,
        env=env,
        sbatch_args=[f"--ntasks={NTASKS}", f"--output={tmp_path}/%x-%j.out"],
        cwd=REPO,
    )
    return cluster.wait(job_id, timeout=JOB_TIMEOUT)


def describe(result: JobResult, cluster: SlurmCluster) -> str:
    """Job state, output and slurmd log, for assertion messages."""
    return (
        f"job {result.job_id}: {result.state}, exit code {result.exit_code}:{result.signal}\n"
        f"--- job output:\n{result.output()}\n{cluster.daemon_log('slurmd')}"
    )


def test_cluster_runs_pmix_mpi_job(cluster: SlurmCluster, tmp_path: Path) -> None:
    """The harness itself: ``srun --mpi=pmix`` wires up a 2-rank MPI job."""
    script = tmp_path / "hello.sh"
    script.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        f"srun --mpi=pmix {sys.executable} -c "
        "'from mpi4py import MPI; print(\"size\", MPI.COMM_WORLD.size)'\n"
    )
    job_id = cluster.submit(
        script,
        sbatch_args=[f"--ntasks={NTASKS}", f"--output={tmp_path}/hello-%j.out"],
        cwd=tmp_path,
    )
    result = cluster.wait(job_id, timeout=60)
    assert result.state == "COMPLETED", describe(result, cluster)
    assert result.output().split().count(f"{NTASKS}") == NTASKS, describe(result, cluster)


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_run_sbatch_writes_hdf5(cluster: SlurmCluster, tmp_path: Path, launcher: str) -> None:
    """``run.sbatch`` runs scenario b1 on 2 ranks and the HDF5 output is complete."""
    out = tmp_path / "b1.h5"
    result = submit_run(cluster, tmp_path, ["b1", str(out), *SIM_ARGS], job_env(launcher))
    assert result.state == "COMPLETED", describe(result, cluster)
    assert result.exit_code == 0, describe(result, cluster)
    # The script prints the exact command it ran.
    assert "-m tokensim_hpc run b1" in result.output()
    with h5py.File(out, "r") as h5:
        assert int(h5.attrs["ranks"]) == NTASKS
        price = h5["timeseries/price"][()]
    assert price.shape == (TICKS,)
    assert np.all(np.isfinite(price))


def test_run_sbatch_sources_site_env(cluster: SlurmCluster, tmp_path: Path) -> None:
    """``TOKENSIM_SITE_ENV`` is sourced before the run; its exports reach the job."""
    site_env = tmp_path / "site-env.sh"
    # The interpreter is chosen in the site file, as a site would do it.
    site_env.write_text(f'echo "site file ran"\nexport TOKENSIM_PYTHON={sys.executable}\n')
    env = job_env("srun", site_env)
    env["TOKENSIM_PYTHON"] = "no-such-python"
    out = tmp_path / "b1.h5"
    result = submit_run(cluster, tmp_path, ["b1", str(out), *SIM_ARGS], env)
    assert result.state == "COMPLETED", describe(result, cluster)
    assert "site file ran" in result.output()
    assert out.exists()


STRESS = """
[run]
model = "defi"
ticks = 12

[agents]
n = 2000

[[chains]]
name = "ethereum"
tokens = ["ETH", "USDC"]

[[pools]]
chain = "ethereum"
base = "ETH"
quote = "USDC"
reserve_base = 2000.0
reserve_quote = 6000000.0

[[stress.shocks]]
name = "crash"
tick = 6
kind = "oracle"
target = "ETH"
size = 0.4
"""


def test_run_sbatch_runs_a_stress_test(cluster: SlurmCluster, tmp_path: Path) -> None:
    """``TOKENSIM_COMMAND=stress``: the base case and the shock in one file; the risk
    measures on PETSc, with PETSc options after ``--`` passed through sbatch."""
    scenario = tmp_path / "shock.toml"
    scenario.write_text(STRESS)
    out = tmp_path / "stress.h5"
    env = job_env("srun")
    env["TOKENSIM_COMMAND"] = "stress"
    args = [str(scenario), str(out), "--quiet", "--set", "risk.solver=petsc", "--set",
            "risk.every=4", "--set", "model.frac_payment=0.2", "--set", "model.frac_noise=0.1",
            "--set", "model.pay_probability=0.5", "--", "-log_view"]
    result = submit_run(cluster, tmp_path, args, env)
    assert result.state == "COMPLETED", describe(result, cluster)
    assert "-m tokensim_hpc stress" in result.output()
    assert "PETSc Performance Summary" in result.output()  # -log_view reached PETSc
    with h5py.File(out, "r") as h5:
        assert list(h5.attrs["runs"]) == ["base", "crash"] and h5.attrs["complete"]
        base, crash = h5["base/oracle_price"][()], h5["crash/oracle_price"][()]
        debtrank = h5["base/debtrank"][()]
    assert np.array_equal(crash[:5], base[:5])
    assert np.array_equal(crash[5:], base[5:] * 0.6)
    assert np.all(np.isnan(debtrank[:3])) and np.all(debtrank[3:] > 0)


def test_failing_run_fails_the_job(cluster: SlurmCluster, tmp_path: Path) -> None:
    """An unknown scenario makes the simulator, and so the job, fail."""
    out = tmp_path / "none.h5"
    result = submit_run(cluster, tmp_path, ["nosuchscenario", str(out), *SIM_ARGS], job_env())
    assert result.state == "FAILED", describe(result, cluster)
    assert result.exit_code != 0, describe(result, cluster)
    assert "FAILED" in result.output()


def test_unknown_launcher_fails_the_job(cluster: SlurmCluster, tmp_path: Path) -> None:
    """A bad ``TOKENSIM_LAUNCHER`` is reported and fails the job before any run."""
    result = submit_run(cluster, tmp_path, ["b1", *SIM_ARGS], job_env("qsub"))
    assert result.state == "FAILED", describe(result, cluster)
    assert result.exit_code == 2, describe(result, cluster)
    assert "TOKENSIM_LAUNCHER must be srun or mpirun" in result.output()
