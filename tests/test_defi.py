"""The tokenized economy end to end: bit-identical on 1-4 ranks and both backends,
tokens conserved every tick, output layout, and market errors refused up front."""

import tomllib

import h5py
import numpy as np
import pytest
from mpirun import REPO, mpirun, simulate

SETS = ["agents.n=4000", "run.ticks=24", "output.every=8", "model.frac_arbitrage=0.2",
        "model.frac_noise=0.05", "model.frac_herding=0.25", "model.frac_liquidity=0.05",
        "model.frac_payment=0.05",
        "model.frac_borrower=0.05", "model.frac_portfolio=0.05", "model.leverage=0.75",
        "model.rebalance_ratio=1.02",
        "model.lp_calm=0.05", "model.lp_stress=0.15", "clusters.every=8",
        "network.rewire_every=8", "network.gamma=0.5", "risk.every=4"]


def _same(a, b):
    """Equal element for element, NaN (no cluster yet) matching NaN."""
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("defi")
    files = {}
    for n in (1, 2, 3, 4):
        files[n] = tmp / f"r{n}.h5"
        simulate(n, files[n], *SETS, scenario="defi")
    files["numpy"] = tmp / "numpy.h5"
    # The numpy twins, with the halo exchange overlapped (defi's default is one pass).
    simulate(2, files["numpy"], *SETS, "engine.backend=numpy", "engine.overlap=true",
             scenario="defi")
    return files


def test_bit_identical_on_1_to_4_ranks_both_backends_and_with_overlap(runs):
    ref = _datasets(runs[1])
    assert len(ref) >= 20
    for key in (2, 3, 4, "numpy"):
        other = _datasets(runs[key])
        assert sorted(other) == sorted(ref)
        for name in ref:
            assert _same(ref[name], other[name]), f"{name} differs ({key})"
    # The markets moved and every type traded; the credit network carried risk.
    assert np.ptp(ref["timeseries/pool_price"], axis=0).min() > 0
    assert np.nanmin(ref["timeseries/debtrank"]) > 0
    assert np.nanmin(ref["timeseries/contagion_expected_defaults"]) > 0
    assert ref["timeseries/orders"].sum() > 24 * 1000


def _labels(dset):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dset.attrs["labels"]]


def test_every_token_is_conserved_every_tick(runs):
    _check_conservation(runs[2])
    gas = _datasets(runs[2])["timeseries/gas_burned"].sum(axis=0)
    assert gas.min() > 0  # every chain burned gas


def _check_conservation(path):
    """Per (chain, token) slot: agents + borrowers' collateral + pools + bridge vaults +
    transfers in flight to it + payments in flight + gas burned + spending burned + what
    the lending protocols received + what stress shocks removed - income and portfolio
    deposits minted equals the start, every tick.

    Gas is paid in the quote token of the pool traded in (every pool here quotes in
    its chain's USDC) and burned."""
    d = _datasets(path)
    with h5py.File(path, "r") as f:
        slots = _labels(f["timeseries/holdings"])
        pools = _labels(f["timeseries/pool_price"])
        chains = _labels(f["timeseries/gas_burned"])
        directions = _labels(f["timeseries/bridge_sent"])
        scenario = tomllib.loads(f.attrs["scenario"])
    slot_of = {s: i for i, s in enumerate(slots)}
    chain_pair = [(p.split(":")[0], p.split(":")[1].split("/")) for p in pools]
    base_slot = [slot_of[f"{c}:{b}"] for c, (b, _) in chain_pair]
    quote_slot = [slot_of[f"{c}:{q}"] for c, (_, q) in chain_pair]
    gas_slot = [slot_of[f"{c}:USDC"] for c in chains]
    # Direction "a->b:TOKEN": its vault (sending side) is in slot a:TOKEN, its flight in b:TOKEN.
    ends = [(d_.split(":")[0].split("->"), d_.split(":")[1]) for d_ in directions]
    vault_slot = [slot_of[f"{a}:{t}"] for (a, _), t in ends]
    flight_slot = [slot_of[f"{b}:{t}"] for (_, b), t in ends]

    def totals(agents, pool_base, pool_quote, burned, vault, flight):
        out = np.array(agents, dtype=float)
        for where, what in ((base_slot, pool_base), (quote_slot, pool_quote),
                            (gas_slot, burned), (vault_slot, vault), (flight_slot, flight)):
            np.add.at(out, where, what)
        return out

    liquidity = np.repeat([b["liquidity"] for b in scenario.get("bridges", [])], 2)
    # Borrowers' collateral is their home pool's base token.
    locked = np.zeros(len(slots))
    np.add.at(locked, np.asarray(base_slot)[d["agents/pool"]], d["snapshots/collateral"][0])
    start = totals(d["snapshots/holdings"][0].sum(axis=1) + locked,
                   [p["reserve_base"] for p in scenario["pools"]],
                   [p["reserve_quote"] for p in scenario["pools"]], np.zeros(len(chains)),
                   liquidity, np.zeros(len(directions)))
    burned = np.cumsum(d["timeseries/gas_burned"], axis=0)
    net_minted = np.cumsum(d["timeseries/income_minted"] - d["timeseries/spending_burned"]
                           - d["timeseries/protocol_received"]
                           + d["timeseries/portfolio_flow"]
                           - d["timeseries/stress_removed"], axis=0)
    for t in range(d["timeseries/holdings"].shape[0]):
        now = totals(d["timeseries/holdings"][t], d["timeseries/pool_base"][t],
                     d["timeseries/pool_quote"][t], burned[t], d["timeseries/bridge_vault"][t],
                     d["timeseries/bridge_in_flight"][t])
        now += (d["timeseries/payments_in_flight"][t] + d["timeseries/collateral"][t]
                - net_minted[t])
        assert np.all(np.abs(now - start) <= 1e-12 * np.abs(start)), (t, now - start)


def _check_arrivals(path):
    """What a bridge direction delivers at t + delay is rate times what it accepted at t."""
    d = _datasets(path)
    with h5py.File(path, "r") as f:
        scenario = tomllib.loads(f.attrs["scenario"])
    sent, got = d["timeseries/bridge_sent"], d["timeseries/bridge_delivered"]
    for k, bridge in enumerate(scenario["bridges"]):
        for direction in (2 * k, 2 * k + 1):
            tau, rate = bridge["delay"], bridge["rate"]
            # Sent at the end of tick t (row t - 1), delivered at the start of t + tau.
            np.testing.assert_allclose(got[tau:, direction], rate * sent[:-tau, direction],
                                       rtol=1e-12, atol=1e-9)
            assert np.all(got[:tau, direction] == 0.0)
    return sent, got


def test_liquidity_shares_add_up(runs):
    """The providers' shares per pool are the pool's supply less the initial sqrt(x y),
    at every snapshot, and providers did deposit and withdraw."""
    d = _datasets(runs[3])
    with h5py.File(runs[3], "r") as f:
        scenario = tomllib.loads(f.attrs["scenario"])
    initial = np.array([np.sqrt(p["reserve_base"] * p["reserve_quote"])
                        for p in scenario["pools"]])
    supply = np.vstack((initial, d["timeseries/lp_supply"]))
    for row, tick in enumerate(d["snapshots/tick"]):
        held = np.bincount(d["agents/pool"], weights=d["snapshots/lp_shares"][row], minlength=6)
        np.testing.assert_allclose(held, supply[tick] - initial, rtol=1e-9, atol=1e-6)
    assert d["timeseries/lp_minted"].sum() > 0 and d["timeseries/lp_burned"].sum() > 0


def test_payments_travel_as_messages(runs):
    """Payment users paid neighbours; some payments were in flight at the end of a tick
    (batched, delivered at t + tau) and none are left that should have landed. Trade
    credit repayments are always batched: all of those of t and t - 1 are in flight."""
    d = _datasets(runs[2])
    paid = d["timeseries/payments"].sum(axis=1)
    repaid = d["timeseries/credit_repaid"].sum(axis=1)
    flight = d["timeseries/payments_in_flight"].sum(axis=1)
    assert paid.min() > 0 and flight.max() > 0 and repaid.sum() > 0
    # With tau = 2, what is in flight after tick t was sent at t - 1 or t: every
    # repayment, and the batched part of the payments.
    payments_flying = flight[1:] - repaid[1:] - repaid[:-1]
    assert np.all(payments_flying >= -1e-12 * flight.max())
    assert np.all(payments_flying <= paid[1:] + paid[:-1] + 1e-9)
    assert d["timeseries/income_minted"].sum() > 0 and d["timeseries/spending_burned"].sum() > 0


def test_portfolio_managers_rebalance_into_their_no_trade_band(runs):
    """They start far from their target weights (half of their value in base) and end
    within their band, give or take a tick of deposits and price moves; the deposits
    are recorded (and conserved: see the conservation test)."""
    d = _datasets(runs[2])
    with h5py.File(runs[2], "r") as f:
        slots = _labels(f["timeseries/holdings"])
        scenario = tomllib.loads(f.attrs["scenario"])
    pools, model = scenario["pools"], scenario["model"]
    who = np.flatnonzero(d["agents/type"] == 7)
    home = d["agents/pool"][who]
    base = np.array([slots.index(f"{p['chain']}:{p['base']}") for p in pools])[home]
    quote = np.array([slots.index(f"{p['chain']}:{p['quote']}") for p in pools])[home]
    band = ((np.array([p["fee"] for p in pools])[home] + model["portfolio_cost"])
            / d["agents/risk_aversion"][who])
    target = d["agents/target_weight"][who]

    def distance_outside_band(snap, price):
        value = d["snapshots/holdings"][snap, base, who] * price[home]
        w = value / (value + d["snapshots/holdings"][snap, quote, who])
        return np.abs(w - target) - band

    assert who.size > 100
    assert np.median(distance_outside_band(0, d["timeseries/pool_price"][0])) > 0.03
    assert np.max(distance_outside_band(-1, d["timeseries/pool_price"][-1])) < 0.02
    assert np.abs(d["timeseries/portfolio_flow"]).sum(axis=0).max() > 0


def test_the_network_evolves_and_stays_well_formed(runs):
    """Strengths stay in [0, 1]; weak edges are replaced every 8 ticks, each row keeping
    its k distinct targets, none of them itself; the counts match the changes."""
    from tokensim_hpc.io import open_run

    with open_run(runs[3]) as run:
        first, last = run.edges(0), run.edges(-1)
        rewired = run.series("edges_rewired")
        gid = run.snapshot(0)["gid"]
        strength = run.timeseries()["edge_strength"]
    k = 8
    assert np.array_equal(first["source"], np.repeat(gid, k))
    assert np.all(first["strength"] == 0.5)  # network.eta0
    assert np.all((last["strength"] >= 0) & (last["strength"] <= 1))
    rows = last["target"].reshape(-1, k)
    srt = np.sort(rows, axis=1)
    assert not np.any(srt[:, 1:] == srt[:, :-1]) and not np.any(rows == gid[:, None])
    # The tie in-strengths and the 20 most central agents of each snapshot agree.
    with open_run(runs[3]) as run:
        snap = run.snapshot(-1)
    want = np.bincount(np.searchsorted(gid, last["target"]) if np.all(np.diff(gid) > 0)
                       else np.argsort(gid)[np.searchsorted(np.sort(gid), last["target"])],
                       weights=last["strength"], minlength=gid.size)
    np.testing.assert_allclose(snap["in_strength"], want, rtol=1e-12)
    order = np.lexsort((gid, -snap["in_strength"]))[:20]
    assert snap["central_id"].tolist() == gid[order].tolist()
    assert np.array_equal(snap["central_strength"], snap["in_strength"][order])
    changed = int((first["target"] != last["target"]).sum())
    formed = rewired.to_numpy()[:, :2].sum()
    assert 0 < changed <= formed
    assert np.all(rewired.to_numpy()[[t - 1 for t in range(1, 25) if t % 8], :] == 0)
    assert np.all((strength > 0) & (strength < 1)) and strength.iloc[-1] != strength.iloc[0]


def test_output_layout_and_labels(runs):
    with h5py.File(runs[2], "r") as f:
        assert f.attrs["model"] == "defi"
        assert f["timeseries/pool_price"].shape == (24, 6)
        assert f["timeseries/holdings"].shape == (24, 9)
        assert f["snapshots/holdings"].shape == (4, 9, 4000)
        assert f["agents/type"].attrs["labels"].tolist() == ["noise", "herding",
                                                             "fundamentalist", "arbitrageur",
                                                             "liquidity", "payment",
                                                             "borrower", "portfolio"]
        for name in ("timeseries/pool_price", "snapshots/holdings", "agents/type"):
            assert f[name].attrs["units"] is not None and f[name].attrs["description"]
        clusters, largest = f["timeseries/clusters"][...], f["timeseries/largest_cluster"][...]
        assert clusters[0] == 4000 and largest[0] == 1  # before the first clustering
        assert 1 < clusters[-1] < 4000 and 1 < largest[-1] < 4000
        top = f["timeseries/cluster_size"][...]
        assert top[-1, 0] == largest[-1] and np.all(np.diff(top[-1]) <= 0)
        assert np.all(np.isnan(top[0]))  # nothing before the first clustering
        assert np.all(np.abs(f["timeseries/cluster_sentiment"][-1]) <= 1)
        assert np.all(f["timeseries/cluster_wealth"][-1] > 0)
        # Every agent's cluster in the snapshots: the largest clusters' sizes are there.
        label = f["snapshots/cluster"][-1]
        assert np.array_equal(f["snapshots/cluster"][0], f["agents/gid"][...])
        _, counts = np.unique(label, return_counts=True)
        assert np.sort(counts)[::-1][:5].tolist() == top[-1].tolist()
        assert np.unique(label).size == clusters[-1]
        # Updated every 8 ticks only (tick t is row t - 1).
        assert np.all(clusters[7:15] == clusters[7]) and np.all(clusters[15:23] == clusters[15])
        kinds = np.bincount(f["agents/type"][...], minlength=8)
        assert np.all(np.abs(kinds / 4000 - [0.05, 0.25, 0.3, 0.2, 0.05, 0.05, 0.05, 0.05])
                      < 0.03)


def test_misconfigured_market_is_refused_before_the_run(tmp_path):
    text = (REPO / "tokensim_hpc" / "scenarios" / "defi.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('to = "solana"', 'to = "cardano"'))
    out = tmp_path / "bad.h5"
    proc = mpirun(2, ["-m", "tokensim_hpc", "run", str(bad), "-o", str(out)], timeout=60)
    assert proc.returncode == 2
    assert "bridges[1].to = 'cardano' is not allowed" in proc.stderr
    assert proc.stderr.count("error:") == 1 and not out.exists()


GAP = """
[run]
model = "defi"
ticks = 24
[agents]
n = 4000
[model]
frac_noise = {noise}
frac_herding = 0.0
frac_fundamentalist = 0.0
frac_arbitrage = {arb}
noise_sigma = 0.05
oracle_sigma = 0.0
rebalance_ratio = 1.1
[output]
every = 24
network = false
[[chains]]
name = "a"
tokens = ["ETH", "USDC"]
gas_fee = 0.01
[[chains]]
name = "b"
tokens = ["ETH", "USDC"]
gas_fee = 0.01
[[pools]]
chain = "a"
base = "ETH"
quote = "USDC"
reserve_base = 1000.0
reserve_quote = 3000000.0
[[pools]]
chain = "b"
base = "ETH"
quote = "USDC"
reserve_base = 1000.0
reserve_quote = 3300000.0
[[bridges]]
from = "a"
to = "b"
token = "USDC"
rate = 0.999
delay = 2
liquidity = 1000000.0
"""
# Snapshots are needed for the conservation check (agents' holdings at tick 0).


def test_arbitrage_narrows_a_planted_cross_chain_gap(tmp_path):
    """Pools of one pair 10 % apart: arbitrageurs bring the gap down to the band their
    costs leave (fees 0.3 % a side, the bridge's 0.1 %, and gas against each one's
    share of the profit: about 1.5 % here) within two ticks; without them it stays."""
    gaps = {}
    for arb in (0.5, 0.0):
        f = tmp_path / f"gap{arb}.toml"
        f.write_text(GAP.format(noise=1.0 - arb, arb=arb))
        out = tmp_path / f"gap{arb}.h5"
        simulate(2, out, scenario=str(f))
        with h5py.File(out, "r") as h:
            price = h["timeseries/pool_price"][...]
            orders = h["timeseries/orders"][...]
        gaps[arb] = np.log(price[:, 1] / price[:, 0])
        assert orders.sum() > 0
        _check_conservation(out)
        if arb:
            # The arbitrageurs sell on b, buy on a: USDC piles up on b and goes back to a.
            sent, got = _check_arrivals(out)
            assert sent[:, 1].sum() > 1000.0 and got[:, 1].sum() > 1000.0
    assert np.abs(gaps[0.0][12:]).min() > 0.08
    assert gaps[0.5][0] < 0.6 * gaps[0.0][0] and gaps[0.5][1] < 0.02  # closes at once
    assert np.abs(gaps[0.5][12:]).max() < 0.02 and np.abs(gaps[0.5][12:]).mean() < 0.013


CRASH = """
[run]
model = "defi"
ticks = 24
[agents]
n = 3000
[model]
frac_noise = 0.0
frac_herding = 0.0
frac_fundamentalist = 0.4
frac_borrower = 0.6
fundamental_gain = 10.0
oracle_mu = -1.0
oracle_sigma = 0.0
leverage = 0.74
heterogeneity = 0.4
order_fraction = 0.02
[output]
every = 24
network = false
[[chains]]
name = "a"
tokens = ["ETH", "USDC"]
[[pools]]
chain = "a"
base = "ETH"
quote = "USDC"
reserve_base = 1000.0
reserve_quote = 3000000.0
"""


def test_liquidation_cascades_happen_are_conserved_and_rank_independent(tmp_path):
    """The oracle falls, fundamentalists sell, borrowers fall below health 1; their
    liquidations push the price further and liquidate others in later rounds of the same
    tick. Tokens are conserved, and 1 and 3 ranks agree bit for bit."""
    f = tmp_path / "crash.toml"
    f.write_text(CRASH)
    files = {}
    for n in (1, 3):
        files[n] = tmp_path / f"crash{n}.h5"
        simulate(n, files[n], scenario=str(f))
    one, three = _datasets(files[1]), _datasets(files[3])
    for name in one:
        assert _same(one[name], three[name]), name
    assert one["timeseries/liquidations"].sum() > 100
    assert one["timeseries/liquidation_rounds"].max() >= 3  # a cascade within one tick
    assert one["timeseries/protocol_received"].sum() > 0
    assert one["timeseries/debt"][-1].sum() < one["timeseries/debt"][0].sum()
    _check_conservation(files[3])


def _oracle_runs(tmp_path, spec):
    """The CRASH scenario with its oracle from ``spec``, run without and with the Kalman
    filter (q = 0 and 5, r = 100): (the scenario file, {q: the first pool's oracle
    series})."""
    scenario = tmp_path / "file.toml"
    scenario.write_text(CRASH.replace('oracle_mu = -1.0', f'oracle_file = "{spec}"'))
    series = {}
    for q in (0.0, 5.0):
        out = tmp_path / f"file{q}.h5"
        simulate(2, out, f"model.oracle_kalman_q={q}", "model.oracle_kalman_r=100.0",
                 scenario=str(scenario))
        with h5py.File(out, "r") as f:
            series[q] = f["timeseries/oracle_price"][:, 0]
    return scenario, series


def _run_with_oracle_file(scenario, out, spec):
    """``run`` of ``scenario`` with model.oracle_file = ``spec`` on 2 ranks."""
    return mpirun(2, ["-m", "tokensim_hpc", "run", str(scenario), "-o", str(out),
                      "--set", f'model.oracle_file="{spec}"'], timeout=60)


def test_oracle_prices_from_a_file_with_a_kalman_filter(tmp_path):
    """model.oracle_file replaces the GBM: the oracle series is the file's rows 1..ticks,
    smoothed when model.oracle_kalman_q > 0; a file without the pool's token is refused
    before the run."""
    from tokensim_hpc.markets.oracle import kalman_smooth

    rs = np.random.default_rng(9)
    prices = 3000 * np.exp(np.cumsum(rs.normal(0, 0.01, 25)))
    csv = tmp_path / "prices.csv"
    csv.write_text("ETH,BTC\n" + "".join(f"{p!r},{2 * p!r}\n" for p in prices))
    scenario, series = _oracle_runs(tmp_path, csv)
    for q, oracle in series.items():
        want = prices if q == 0.0 else kalman_smooth(prices[:, None], q, 100.0)[:, 0]
        np.testing.assert_array_equal(oracle, want[1:])
    bad = tmp_path / "bad.csv"
    bad.write_text("BTC\n1.0\n")
    proc = _run_with_oracle_file(scenario, tmp_path / "x.h5", bad)
    assert proc.returncode == 2
    assert "model.oracle_file" in proc.stderr and "no column 'ETH'" in proc.stderr


def _write_hdf5_prices(path, layout, columns):
    """An HDF5 price table in one of the two layouts: a 2-D dataset /prices with a
    'columns' attribute, or a group /feeds/hourly of 1-D datasets; returns the oracle
    spec naming it."""
    with h5py.File(path, "w") as f:
        if layout == "table":
            d = f.create_dataset("prices", data=np.stack(list(columns.values()), axis=1))
            d.attrs["columns"] = list(columns)
            return str(path)
        g = f.create_group("feeds/hourly")
        for name, series in columns.items():
            g.create_dataset(name, data=series)
        return f"{path}:/feeds/hourly"


@pytest.mark.parametrize("layout", ["table", "group"])
def test_oracle_prices_from_an_hdf5_file(tmp_path, layout):
    """An HDF5 oracle file in either layout: the oracle series is the ETH column's rows
    1..ticks (rows beyond the run ignored, other columns too), Kalman-smoothed when
    model.oracle_kalman_q > 0; a file without the pool's token is refused before the run
    with exit status 2 and no output file."""
    from tokensim_hpc.markets.oracle import kalman_smooth

    rs = np.random.default_rng(11)
    eth = 3000 * np.exp(np.cumsum(rs.normal(0, 0.01, 30)))
    btc = 60000 * np.exp(np.cumsum(rs.normal(0, 0.01, 30)))
    spec = _write_hdf5_prices(tmp_path / "prices.h5", layout, {"BTC": btc, "ETH": eth})
    scenario, series = _oracle_runs(tmp_path, spec)
    for q, oracle in series.items():
        want = eth if q == 0.0 else kalman_smooth(eth[:, None], q, 100.0)[:, 0]
        assert oracle.shape == (24,)
        np.testing.assert_array_equal(oracle, want[1:25])
    bad = _write_hdf5_prices(tmp_path / "bad.h5", layout, {"BTC": btc})
    proc = _run_with_oracle_file(scenario, tmp_path / "x.h5", bad)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    what = "no column 'ETH'" if layout == "table" else "no dataset 'ETH'"
    assert f"model.oracle_file = '{bad}' is not allowed" in proc.stderr
    assert what in proc.stderr
    assert not list(tmp_path.glob("x.h5*"))  # no output file, not even a partial one
