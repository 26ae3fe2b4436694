"""Stress tests (paper 9.1): the [stress] table, the stress command's file, each shock's
effect, conservation with tokens removed, and shocks to things that do not exist."""

import tomllib

import h5py
import numpy as np
import pytest
from mpirun import mpirun, simulate
from test_defi import _check_conservation

from tokensim_hpc.errors import ScenarioError
from tokensim_hpc.scenario import resolve

SCENARIO = """# defi with four shocks
[run]
model = "defi"
ticks = 48

[agents]
n = 4000

[model]
frac_noise = 0.05
frac_herding = 0.25
frac_fundamentalist = 0.3
frac_arbitrage = 0.2
frac_liquidity = 0.05
frac_payment = 0.05
frac_borrower = 0.05
frac_portfolio = 0.05
leverage = 0.75
rebalance_ratio = 1.02

[risk]
every = 4

[[chains]]
name = "ethereum"
tokens = ["ETH", "USDC"]
gas_fee = 0.5

[[chains]]
name = "arbitrum"
tokens = ["ETH", "USDC"]
gas_fee = 0.05

[[pools]]
chain = "ethereum"
base = "ETH"
quote = "USDC"
reserve_base = 2000.0
reserve_quote = 6000000.0

[[pools]]
chain = "arbitrum"
base = "ETH"
quote = "USDC"
reserve_base = 1000.0
reserve_quote = 3000000.0

[[bridges]]
from = "ethereum"
to = "arbitrum"
token = "ETH"
delay = 2
liquidity = 1000.0

[[stress.shocks]]
name = "eth_crash"
tick = 20
kind = "oracle"
target = "ETH"
size = 0.3

[[stress.shocks]]
name = "drain"
tick = 16
kind = "drain"
target = "arbitrum:ETH/USDC"
size = 0.5

[[stress.shocks]]
name = "halt"
tick = 10
kind = "halt"
target = "arbitrum->ethereum"
duration = 8

[[stress.shocks]]
name = "defaults"
tick = 12
kind = "default"
agents = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55]
"""


@pytest.fixture(scope="module")
def stress_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stress")
    (tmp / "stress.toml").write_text(SCENARIO)
    out = tmp / "out.h5"
    proc = mpirun(3, ["-m", "tokensim_hpc", "stress", str(tmp / "stress.toml"), "-o", str(out)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "eth_crash" in proc.stdout and "differences from the base case" in proc.stdout
    return out


def _group(f, name):
    return {k: f[name][k][...] for k in f[name]}


def _labels(dset):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dset.attrs["labels"]]


def test_each_shock_is_the_base_case_until_its_tick(stress_file):
    with h5py.File(stress_file, "r") as f:
        assert f.attrs["complete"] and list(f.attrs["runs"])[0] == "base"
        base = _group(f, "base")
        shocks = tomllib.loads(f.attrs["scenario"])["stress"]["shocks"]
        for shock in shocks:
            run = _group(f, shock["name"])
            t = shock["tick"]
            assert f[shock["name"]].attrs["kind"] == shock["kind"]
            for name, values in base.items():
                assert np.array_equal(values[:t - 1], run[name][:t - 1], equal_nan=True), \
                    (shock["name"], name)
            assert run["total_wealth"][-1] != base["total_wealth"][-1], shock["name"]
            diff = f["difference"][shock["name"]]
            assert {"credit_written_off", "debtrank", "clearing_shortfall"} <= set(diff)
            for name in diff:
                assert np.array_equal(diff[name][...], run[name] - base[name], equal_nan=True)
                assert diff[name].attrs["units"] is not None


def test_what_each_shock_does(stress_file):
    with h5py.File(stress_file, "r") as f:
        base = _group(f, "base")
        slots = _labels(f["base/holdings"])
        directions = _labels(f["base/bridge_sent"])
        crash, drain = _group(f, "eth_crash"), _group(f, "drain")
        halt, defaults = _group(f, "halt"), _group(f, "defaults")
    # Oracle: from tick 20, every ETH pool's reference price is the base one times 0.7.
    assert np.array_equal(crash["oracle_price"][19:], base["oracle_price"][19:] * 0.7)
    assert crash["liquidations"].sum() > base["liquidations"].sum()
    # Drain at tick 16: half of the arbitrum pool's reserves leave the economy.
    slot = slots.index("arbitrum:ETH")
    assert drain["stress_removed"][15, slot] == drain["pool_base"][14, 1] * 0.5
    assert drain["stress_removed"][15, slots.index("arbitrum:USDC")] == \
        drain["pool_quote"][14, 1] * 0.5
    assert np.count_nonzero(drain["stress_removed"]) == 2
    # Halt at tick 10 for 8 ticks: nothing crosses that bridge in ticks 10-17, but in base.
    both = [i for i, d in enumerate(directions) if d.split(":")[0] in
            ("ethereum->arbitrum", "arbitrum->ethereum")]
    assert np.all(halt["bridge_sent"][9:17, both] == 0.0)
    assert base["bridge_sent"][9:17, both].sum() > 0
    assert halt["bridge_sent"][17:, both].sum() > 0  # open again
    # Defaults at tick 12: the agents' holdings are written off, nothing else removed.
    assert np.count_nonzero(defaults["stress_removed"].sum(axis=1)) == 1
    assert defaults["stress_removed"][11].sum() > 0


FOREVER = """
[[stress.shocks]]
name = "forever"
tick = 4
kind = "halt"
target = "ethereum->arbitrum"
"""


def test_tokens_are_conserved_with_what_shocks_remove(tmp_path):
    """A run with every shock at once: every slot adds up, tokens removed included. A
    halt to the end outlasts the shorter one (ticks 10-17) on the same bridge. Without
    the network's global edge list, the snapshots still give each edge's source."""
    from tokensim_hpc.io import open_run

    (tmp_path / "s.toml").write_text(SCENARIO + FOREVER)
    out = tmp_path / "run.h5"
    simulate(2, out, "output.every=8", "output.network=false", scenario=str(tmp_path / "s.toml"))
    _check_conservation(out)
    with h5py.File(out, "r") as f:
        assert f["timeseries/stress_removed"][...].sum() > 0
        assert np.all(f["timeseries/bridge_sent"][3:] == 0.0)
        assert "network" not in f
    with open_run(out) as run:
        edges = run.edges(-1)
        assert np.array_equal(edges["source"], np.repeat(run.snapshot(0)["gid"], 8))


def test_shocks_to_missing_things_are_refused(tmp_path):
    cases = [('target = "ETH"', 'target = "DOGE"', "stress.shocks[0].target = 'DOGE' is not "
              "allowed: must be a base token with an oracle ('ETH')"),
             ('agents = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55]', 'agents = [0, 4000]',
              "stress.shocks[3].agents contains 4000, which is not allowed: agent ids are "
              "0 .. agents.n - 1 = 3999"),
             ('target = "arbitrum:ETH/USDC"', 'target = "solana:SOL/USDC"',
              "stress.shocks[1].target = 'solana:SOL/USDC' is not allowed: must be a pool"),
             ('target = "arbitrum->ethereum"', 'target = "arbitrum->solana"',
              "stress.shocks[2].target = 'arbitrum->solana' is not allowed: must be a bridge")]
    cases.append(('name = "eth_crash"', 'name = "tick"', "stress.shocks[0].name = 'tick' "
                  "is not allowed: shock names must be unique"))
    for old, new, message in cases:
        bad = tmp_path / "bad.toml"
        bad.write_text(SCENARIO.replace(old, new))
        with pytest.raises(ScenarioError) as err:
            resolve(str(bad))
        assert message in str(err.value)
    # Through the CLI: exit 2 on every rank, one message, no file.
    out = tmp_path / "never.h5"
    proc = mpirun(2, ["-m", "tokensim_hpc", "stress", str(bad), "-o", str(out)], timeout=60)
    assert proc.returncode == 2 and proc.stderr.count(message) == 1
    assert not out.exists() and not (tmp_path / "never.h5.partial").exists()
    with pytest.raises(ScenarioError, match=r"\[stress\] is not allowed with run.model = 'b1'"):
        resolve("b1", ["stress.shocks=[]"])
    proc = mpirun(2, ["-m", "tokensim_hpc", "stress", "defi", "-o", str(out)], timeout=60)
    assert proc.returncode == 2 and "has no shocks" in proc.stderr
