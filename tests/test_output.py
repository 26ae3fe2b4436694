"""The run file: layout, units and descriptions, reader API, and nothing half-written."""

import signal
import subprocess
import sys
import time
import tomllib

import h5py
import numpy as np
from b1_reference import b1_reference
from mpirun import REPO, mpi_env, simulate

from tokensim_hpc.io import names, open_run


def test_layout_units_and_reader(tmp_path):
    out = tmp_path / "b1.h5"
    simulate(2, out, "agents.n=3000", "run.ticks=10", "output.every=5",
             "model.sigma=0.0", "model.s0_offset=0.45")
    with h5py.File(out, "r") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(datasets) == sorted(names.catalogue("b1"))
        for name in datasets:
            assert f[name].attrs["units"] is not None and f[name].attrs["description"], name
        for attr in ("format_version", "tokensim_version", "scenario", "seed", "ranks",
                     "complete", "init_seconds", "run_seconds", "git_revision", "created"):
            assert attr in f.attrs, attr
        assert f["snapshots/sentiment"].shape == (3, 3000)
        assert f["network/source"].shape == (24000,)
    with open_run(str(out)) as run:
        ts = run.timeseries()
        assert list(ts.index) == list(range(1, 11))
        assert set(ts.columns) == {"price", "net_flow", "mean_sentiment", "total_wealth"}
        ref, nbr = b1_reference(3000, 10, 42, s0_offset=0.45)
        np.testing.assert_allclose(ts["price"].to_numpy(), ref["price"], rtol=1e-9)
        assert list(run.snapshot_ticks) == [0, 5, 10]
        snap = run.snapshot(0)
        assert snap["tick"] == 0
        np.testing.assert_array_equal(snap["sentiment"], snap["x"] - 0.45)
        # Agents are stored in global Hilbert order with their ids; positions match the spec.
        xy = np.random.default_rng(42).random((3000, 2))
        assert np.array_equal(snap["x"], xy[snap["gid"], 0])
        edges = run.edges()
        assert np.array_equal(edges["source"].reshape(-1, 8)[:, 0], snap["gid"])
        assert np.array_equal(edges["target"].reshape(-1, 8), nbr[snap["gid"]])
        assert np.all(edges["weight"] == 0.125)
        assert tomllib.loads(h5py.File(out, "r").attrs["scenario"])["agents"]["n"] == 3000
        assert run.scenario["model"]["sigma"] == 0.0


def test_interrupted_run_leaves_no_complete_file(tmp_path):
    out = tmp_path / "long.h5"
    cmd = ["mpirun", "--oversubscribe", "-n", "2", sys.executable, "-m", "tokensim_hpc", "run",
           "b1", "-o", str(out), "--quiet", "--set", "agents.n=20000",
           "--set", "run.ticks=100000"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=mpi_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    partial = tmp_path / "long.h5.partial"
    deadline = time.time() + 60
    while not partial.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert partial.exists(), "the run writes under a temporary name"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists(), "an interrupted run must not leave a file under the final name"
    try:
        open_run(str(partial))
        raise AssertionError("a partial file must be refused by the reader")
    except (ValueError, OSError):
        pass


def test_zero_ticks_and_ranks_without_agents(tmp_path):
    """Edge cases of the collective writes: empty time series, ranks that own nothing."""
    empty = tmp_path / "t0.h5"
    simulate(2, empty, "agents.n=500", "run.ticks=0")
    with open_run(str(empty)) as run:
        assert len(run.timeseries()) == 0 and list(run.snapshot_ticks) == [0]
    tiny = tmp_path / "n3.h5"
    simulate(4, tiny, "agents.n=3", "network.k=2", "run.ticks=3")
    with open_run(str(tiny)) as run:
        assert sorted(run.snapshot(-1)["gid"]) == [0, 1, 2]
        assert len(run.edges()["source"]) == 6 and len(run.timeseries()) == 3


def test_plot_command_writes_a_png(tmp_path):
    out = tmp_path / "b1.h5"
    simulate(2, out, "agents.n=2000", "run.ticks=6", "output.every=3", "model.s0_offset=0.5")
    png = tmp_path / "pic.png"
    proc = subprocess.run([sys.executable, "-m", "tokensim_hpc", "plot", str(out), "-o", str(png)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=mpi_env())
    assert proc.returncode == 0, proc.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    missing = subprocess.run([sys.executable, "-m", "tokensim_hpc", "plot",
                              str(tmp_path / "none.h5")], capture_output=True, text=True,
                             timeout=60, cwd=REPO, env=mpi_env())
    assert missing.returncode == 2 and "cannot plot" in missing.stderr
