"""The command line: help, scenarios, show, and every refusal ending the job on all ranks."""

import os
import subprocess
import sys

import pytest
from mpirun import REPO, mpi_env, mpirun


def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "tokensim_hpc", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=mpi_env())


def test_help_explains_commands():
    out = _cli("--help").stdout
    for word in ("run", "show", "scenarios", "keys", "mpirun"):
        assert word in out
    run_help = _cli("run", "--help").stdout
    for word in ("--set", "--overwrite", "--quiet", "-o"):
        assert word in run_help


def test_scenarios_show_keys():
    assert "b1" in _cli("scenarios").stdout
    shown = _cli("show", "b1", "--set", "agents.n=77").stdout
    assert "n = 77" in shown and "[engine]" in shown and 'backend = "cython"' in shown
    assert "network.p" in _cli("keys").stdout


@pytest.mark.parametrize("sets, message", [
    (["agents.n=0"], "agents.n = 0 is not allowed"),
    (["engine.backend=gpu"], "engine.backend = 'gpu' is not allowed"),
    (["network.kk=1"], "unknown key network.kk"),
])
def test_bad_value_exits_nonzero_on_every_rank(tmp_path, sets, message):
    args = ["-m", "tokensim_hpc", "run", "b1", "-o", str(tmp_path / "x.h5")]
    for s in sets:
        args += ["--set", s]
    proc = mpirun(3, args, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count(message) == 1, proc.stderr  # printed once, by rank 0
    assert not list(tmp_path.iterdir())


def test_unknown_scenario_and_syntax_error(tmp_path):
    proc = mpirun(2, ["-m", "tokensim_hpc", "run", "nosuch", "-o", str(tmp_path / "x.h5")])
    assert proc.returncode == 2 and "built-in" in proc.stderr and "b1" in proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nticks = = 3\n")
    proc = mpirun(2, ["-m", "tokensim_hpc", "run", str(bad), "-o", str(tmp_path / "x.h5")])
    assert proc.returncode == 2 and "bad.toml" in proc.stderr and "line 2" in proc.stderr


def test_output_refusals(tmp_path):
    existing = tmp_path / "exists.h5"
    existing.write_text("not mine")
    base = ["-m", "tokensim_hpc", "run", "b1", "--set", "agents.n=100", "--set", "run.ticks=1"]
    proc = mpirun(2, base + ["-o", str(existing)])
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert existing.read_text() == "not mine"
    proc = mpirun(2, base + ["-o", str(tmp_path / "no" / "dir" / "x.h5")])
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            # root may write anywhere: check the refusal of a path that is a directory instead
            proc = mpirun(2, base + ["-o", str(locked)])
            assert proc.returncode == 2 and "is a directory" in proc.stderr
        else:
            proc = mpirun(2, base + ["-o", str(locked / "x.h5")])
            assert proc.returncode == 2 and "not writable" in proc.stderr
    finally:
        locked.chmod(0o700)


def test_uncaught_exception_on_one_rank_aborts_the_job():
    proc = mpirun(2, [str(REPO / "tests" / "abort_script.py")], timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.count("RuntimeError: injected failure on rank 1") == 1
    assert "[rank 1/2]" in proc.stderr and "unreachable" not in proc.stderr


def test_run_prints_summary_and_progress(tmp_path):
    out = tmp_path / "run.h5"
    proc = mpirun(2, ["-m", "tokensim_hpc", "run", "b1", "-o", str(out), "--set",
                      "agents.n=2000", "--set", "run.ticks=30", "--set",
                      "engine.progress_every=0.000001"])
    assert proc.returncode == 0, proc.stderr
    assert "tick 30/30" in proc.stderr and "ETA" in proc.stderr
    assert "agent-ticks/s" in proc.stdout and str(out) in proc.stdout
    assert out.exists() and not (tmp_path / "run.h5.partial").exists()
